namespace NvDinoPipeline.EngineGeneration;


/// <summary>File names in an engine generation job's output folder.</summary>
public static class EngineArtifacts
{
    /// <summary>The export's <c>model.json</c> with <c>onnx_file</c> naming the ONNX model beside it.</summary>
    public const string ModelMetadata = "model.json";

    /// <summary>target onnxruntime: ONNX Runtime's optimised model, the deploy artifact.</summary>
    public const string OnnxRuntimeModel = "model.ort.onnx";

    /// <summary>target tensorrt: the serialised engine (unless <c>gen_trt_engine.trt_engine</c> puts it elsewhere).</summary>
    public const string Engine = "model.engine";

    /// <summary>target tensorrt: the EP-context model through which ONNX Runtime's TensorRT provider loads the engine.</summary>
    public const string EpContextModel = "model_ctx.onnx";

    /// <summary>target tensorrt, int8: the calibration ranges in TensorRT's calibration-cache format.</summary>
    public const string TensorRtCalibrationCache = "calibration.cache";

    /// <summary>target tensorrt, fp32/fp16: the ONNX model the engine was built from.</summary>
    public const string SourceModel = "model.onnx";

    /// <summary>int8: the explicitly quantised (Q/DQ) ONNX model, input to TensorRT and to ONNX Runtime.</summary>
    public const string QdqModel = "model.int8.onnx";

    /// <summary>int8: activation ranges, tensor → {min, max, amax}.</summary>
    public const string CalibrationCache = "calibration.json";

    public const string BuildLog = "trtexec_build.log";

    public const string VerifyLog = "trtexec_verify.log";

    public const string TimingCache = "timing.cache";
}
