namespace NvDinoPipeline.Ssl.Losses;

/// <summary>How the teacher's prototype scores become target distributions (DINOv2 <c>train.centering</c>).</summary>
public enum TeacherCentering
{
    /// <summary>Subtract a running mean of the teacher outputs, then a sharpened softmax (DINO).</summary>
    Softmax,

    /// <summary>Sinkhorn-Knopp normalisation to an equipartitioned assignment (SwAV, DINOv2's alternative).</summary>
    SinkhornKnopp,
}
