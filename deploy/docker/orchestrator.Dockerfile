# The orchestrator: advances every pipeline through its stages (queue pipeline-orchestrator).
#
# Build from the repository root:
#   docker build -f deploy/docker/orchestrator.Dockerfile -t nvdino/orchestrator:latest .
# BuildKit (the default builder since Docker 23) sends only the folders copied below.
# Configuration is by environment variables only (Section__Key); see deploy/README.md.

ARG DOTNET_VERSION=10.0

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS source
WORKDIR /src
COPY .editorconfig global.json Directory.Build.props Directory.Build.targets Directory.Packages.props ./
COPY build/ build/
COPY contracts/ contracts/
COPY libs/ libs/
COPY services/ services/
COPY specs/ specs/

FROM source AS build-cpu
RUN dotnet publish services/NvDinoPipeline.Orchestrator/NvDinoPipeline.Orchestrator.csproj -c Release -o /app -p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION} AS runtime
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build-cpu /app ./
ENV Health__Port=8080 \
    Api__Port=8090 \
    Workers__ScratchDirectory=/var/lib/nvdino/scratch
RUN mkdir -p /var/lib/nvdino/scratch && chown -R $APP_UID /var/lib/nvdino
USER $APP_UID
EXPOSE 8080 8090
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["dotnet", "NvDinoPipeline.Orchestrator.dll"]
