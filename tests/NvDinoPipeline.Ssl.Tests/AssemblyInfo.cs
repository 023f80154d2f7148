// Tests seed libtorch's process-wide generator (torch.manual_seed) and build modules and tensors from it; test classes
// running at the same time draw from it in between, so a test would start from other weights on some runs (the
// training-step test then saw its divergence fall less than it requires, one run in a few).
[assembly: CollectionBehavior(DisableTestParallelization = true)]
