using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// Rows held in two tensors on the training device; each epoch visits them in the order of one
/// <c>randperm</c> drawn from the task's generator.
/// </summary>
internal sealed class TensorBatchSource : IBatchSource, IDisposable
{
    private readonly Tensor _features;
    private readonly Tensor _labels;
    private readonly Device _device;

    /// <summary>
    /// <paramref name="features"/> [N ≥ 1, <paramref name="inputSize"/>] and <paramref name="labels"/> [N] in
    /// 0..<paramref name="classCount"/>-1, any dtype convertible to float32 / int64. The source keeps its own
    /// references on <paramref name="device"/> (no copy when the tensors are already float32 / int64 there).
    /// </summary>
    public TensorBatchSource(Tensor features, Tensor labels, int inputSize, int classCount, Device device)
    {
        if (features.dim() != 2 || features.shape[1] != inputSize)
            throw new ArgumentException($"Features must be [N, {inputSize}].", nameof(features));
        if (labels.dim() != 1 || labels.shape[0] != features.shape[0])
            throw new ArgumentException("Labels must be [N] with N = number of feature rows.", nameof(labels));
        if (features.shape[0] == 0) throw new ArgumentException("No training rows.", nameof(features));
        _device = device;
        _features = TensorOwnership.Keep(() => features.to(ScalarType.Float32, device).detach().contiguous());
        _labels = TensorOwnership.Keep(() => labels.to(ScalarType.Int64, device).detach().contiguous());
        using (no_grad())
        using (NewDisposeScope())
        {
            long min = _labels.min().item<long>(), max = _labels.max().item<long>();
            if (min < 0 || max >= classCount)
            {
                Dispose();
                throw new ArgumentException($"Labels must be in 0..{classCount - 1}.", nameof(labels));
            }
        }
    }

    public long RowCount => _features.shape[0];

    public IEnumerable<(Tensor Features, Tensor Labels)> Epoch(int batchSize, Generator generator, CancellationToken cancellation)
    {
        long count = RowCount;
        using var order = randperm(count, generator: generator, device: _device);
        for (long start = 0; start < count; start += batchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            using var rows = order.narrow(0, start, Math.Min(batchSize, count - start));
            yield return (_features.index_select(0, rows), _labels.index_select(0, rows));
        }
    }

    public void Dispose()
    {
        _features.Dispose();
        _labels.Dispose();
    }
}
