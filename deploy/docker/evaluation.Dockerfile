# Evaluation worker: scores the deployed model on the labelled test images (queue evaluate-model).
#
# Build from the repository root, the GPU image (default target) or the CPU one:
#   docker build -f deploy/docker/evaluation.Dockerfile --target gpu -t nvdino/evaluation:gpu .
#   docker build -f deploy/docker/evaluation.Dockerfile --target cpu -t nvdino/evaluation:cpu .
# BuildKit (the default builder since Docker 23) builds only the stages a target needs and sends
# only the folders copied below. Configuration is by environment variables only (Section__Key);
# see deploy/README.md.

ARG DOTNET_VERSION=10.0
ARG TENSORRT_IMAGE=nvcr.io/nvidia/tensorrt:25.03-py3

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS source
WORKDIR /src
COPY .editorconfig global.json Directory.Build.props Directory.Build.targets Directory.Packages.props ./
COPY build/ build/
COPY contracts/ contracts/
COPY libs/ libs/
COPY services/ services/
COPY specs/ specs/

FROM source AS build-cpu
RUN dotnet publish services/NvDinoPipeline.Evaluation/NvDinoPipeline.Evaluation.csproj -c Release -o /app -p:UseAppHost=false

# The CUDA builds of libtorch and ONNX Runtime replace the CPU ones (deploy/gpu.props).
FROM source AS build-gpu
COPY deploy/gpu.props deploy/gpu.props
RUN dotnet publish services/NvDinoPipeline.Evaluation/NvDinoPipeline.Evaluation.csproj -c Release -o /app -p:UseAppHost=false \
        -p:TorchBackend=cuda -p:CustomAfterMicrosoftCommonTargets=/src/deploy/gpu.props

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION} AS cpu
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build-cpu /app ./
ENV Health__Port=8080 \
    Workers__ScratchDirectory=/var/lib/nvdino/scratch
RUN mkdir -p /var/lib/nvdino/scratch && chown -R $APP_UID /var/lib/nvdino
USER $APP_UID
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["dotnet", "NvDinoPipeline.Evaluation.dll"]

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION} AS dotnet-runtime

# CUDA, cuDNN and TensorRT with trtexec. An engine runs only on the TensorRT version that built
# it, so engine generation, inference and evaluation share this image. The NVIDIA driver comes from the host.
FROM ${TENSORRT_IMAGE} AS gpu
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl zlib1g tzdata \
    && (apt-get install -y --no-install-recommends libssl3t64 || apt-get install -y --no-install-recommends libssl3) \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 1654 --create-home --shell /usr/sbin/nologin app
COPY --from=dotnet-runtime /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
ENV DOTNET_RUNNING_IN_CONTAINER=true \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PATH=/usr/src/tensorrt/bin:/opt/tensorrt/bin:$PATH
WORKDIR /app
COPY --from=build-gpu /app ./
ENV Health__Port=8080 \
    Workers__ScratchDirectory=/var/lib/nvdino/scratch
RUN mkdir -p /var/lib/nvdino/scratch && chown -R 1654 /var/lib/nvdino
USER 1654
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["dotnet", "NvDinoPipeline.Evaluation.dll"]
