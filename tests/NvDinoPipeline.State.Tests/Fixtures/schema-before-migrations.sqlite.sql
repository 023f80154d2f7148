CREATE TABLE "control_requests" (
    "Id" INTEGER NOT NULL CONSTRAINT "PK_control_requests" PRIMARY KEY AUTOINCREMENT,
    "MessageType" TEXT NOT NULL,
    "Message" TEXT NOT NULL,
    "CreatedAt" TEXT NOT NULL,
    "ProcessedAt" TEXT NULL
);


CREATE TABLE "jobs" (
    "Id" TEXT NOT NULL CONSTRAINT "PK_jobs" PRIMARY KEY,
    "PipelineId" TEXT NOT NULL,
    "ParentJobId" TEXT NULL,
    "Step" TEXT NOT NULL,
    "Stage" TEXT NOT NULL,
    "Attempt" INTEGER NOT NULL,
    "Status" TEXT NOT NULL,
    "Spec" TEXT NOT NULL,
    "CommandType" TEXT NOT NULL,
    "Command" TEXT NOT NULL,
    "CompletionType" TEXT NULL,
    "Completion" TEXT NULL,
    "HandledAt" TEXT NULL,
    "Artifacts" TEXT NOT NULL,
    "Metrics" TEXT NOT NULL,
    "Progress" REAL NULL,
    "ProgressMessage" TEXT NULL,
    "ErrorReason" TEXT NULL,
    "WorkerId" TEXT NULL,
    "LeaseExpiresAt" TEXT NULL,
    "Claims" INTEGER NOT NULL,
    "CreatedAt" TEXT NOT NULL,
    "StartedAt" TEXT NULL,
    "UpdatedAt" TEXT NOT NULL,
    "CompletedAt" TEXT NULL,
    "Version" INTEGER NOT NULL
);


CREATE TABLE "pipelines" (
    "Id" TEXT NOT NULL CONSTRAINT "PK_pipelines" PRIMARY KEY,
    "Name" TEXT NULL,
    "Status" TEXT NOT NULL,
    "Plan" TEXT NOT NULL,
    "Spec" TEXT NOT NULL,
    "TrainDataUri" TEXT NOT NULL,
    "TestDataUri" TEXT NULL,
    "FailedStage" TEXT NULL,
    "ErrorReason" TEXT NULL,
    "CreatedAt" TEXT NOT NULL,
    "UpdatedAt" TEXT NOT NULL,
    "CompletedAt" TEXT NULL,
    "Version" INTEGER NOT NULL
);


CREATE TABLE "workers" (
    "Id" TEXT NOT NULL CONSTRAINT "PK_workers" PRIMARY KEY,
    "Stages" TEXT NOT NULL,
    "HostName" TEXT NOT NULL,
    "StartedAt" TEXT NOT NULL,
    "LastSeenAt" TEXT NOT NULL
);


CREATE INDEX "IX_control_requests_ProcessedAt" ON "control_requests" ("ProcessedAt");


CREATE UNIQUE INDEX "IX_jobs_PipelineId_Step_Attempt" ON "jobs" ("PipelineId", "Step", "Attempt");


CREATE INDEX "IX_jobs_Status" ON "jobs" ("Status");


CREATE INDEX "IX_pipelines_CreatedAt" ON "pipelines" ("CreatedAt");


