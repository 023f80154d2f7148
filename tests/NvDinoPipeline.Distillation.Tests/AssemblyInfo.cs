// Distillation draws drop-path masks from libtorch's process-wide generator, seeded per step; test classes running at
// the same time would draw from it in between.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
