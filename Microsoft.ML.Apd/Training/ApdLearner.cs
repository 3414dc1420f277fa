using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>Trains one task on tensors; knows nothing of IDataView.</summary>
internal static class ApdLearner
{
    /// <summary>
    /// Appends <paramref name="task"/> to <paramref name="network"/> (mutating it) and trains it with the APD objective
    /// and retroactive update; consolidates afterwards when the task count is a multiple of s.
    /// <paramref name="features"/> [N, InputSize] float32 and <paramref name="labels"/> [N] int64 in 0..classCount-1,
    /// on any device. Throws <see cref="OperationCanceledException"/> at the next batch when cancelled; the network is
    /// then in an undefined state (callers train a clone).
    /// </summary>
    public static void TrainTask(ApdNetwork network, string task, int classCount, Tensor features, Tensor labels,
        ApdHyperparameters hyperparameters, IProgress<TaskTrainingProgress>? progress, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentException.ThrowIfNullOrEmpty(task);
        ArgumentNullException.ThrowIfNull(hyperparameters);
        if (network.Tasks.Contains(task)) throw new InvalidOperationException($"Task '{task}' has already been learned.");
        ArgumentOutOfRangeException.ThrowIfLessThan(classCount, 1);
        if (features.dim() != 2 || features.shape[1] != network.Architecture.InputSize)
            throw new ArgumentException($"Features must be [N, {network.Architecture.InputSize}].", nameof(features));
        if (labels.dim() != 1 || labels.shape[0] != features.shape[0])
            throw new ArgumentException("Labels must be [N] with N = number of feature rows.", nameof(labels));
        var h = hyperparameters;
        ArgumentOutOfRangeException.ThrowIfLessThan(h.BatchSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(h.NumberOfEpochs);
        long count = features.shape[0];
        if (count == 0) throw new ArgumentException("No training rows.", nameof(features));

        var device = network.Device;
        // One generator per task, derived from the seed and the task's position: same seed ⇒ same run.
        using var generator = new Generator((ulong)(h.Seed * 1_000_003L + network.Tasks.Count + 1), device);
        using var x = TensorOwnership.Keep(() => features.to(ScalarType.Float32, device).detach().contiguous());
        using var y = TensorOwnership.Keep(() => labels.to(ScalarType.Int64, device).detach().contiguous());
        using (no_grad())
        using (NewDisposeScope())
        {
            long min = y.min().item<long>(), max = y.max().item<long>();
            if (min < 0 || max >= classCount) throw new ArgumentException($"Labels must be in 0..{classCount - 1}.", nameof(labels));
        }

        network.InvalidateCache();
        using var session = new TaskTrainingSession(network, task, classCount, h, generator);
        using var optimizer = new FlatAdam(session.TrainableParameters.ToList(), h.LearningRate);
        int batches = (int)((count + h.BatchSize - 1) / h.BatchSize);
        var clock = Stopwatch.StartNew();
        for (int epoch = 0; epoch < h.NumberOfEpochs; epoch++)
        {
            // lr decayed ×LearningRateDecay per epoch.
            optimizer.LearningRate = h.LearningRate * Math.Pow(h.LearningRateDecay, epoch);
            using var order = randperm(count, generator: generator, device: device);
            for (int batch = 0; batch < batches; batch++)
            {
                cancellation.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                long start = (long)batch * h.BatchSize;
                var rows = order.narrow(0, start, Math.Min(h.BatchSize, count - start));
                var loss = session.Step(optimizer, x.index_select(0, rows), y.index_select(0, rows));
                progress?.Report(new TaskTrainingProgress(task, epoch + 1, h.NumberOfEpochs, batch + 1, batches, loss.item<float>(), clock.Elapsed));
            }
            if (epoch + 1 < h.NumberOfEpochs) session.Retroactive.Refresh(session.Shared);
        }
        session.Commit();
        if (h.ConsolidationInterval > 0 && network.Tasks.Count % h.ConsolidationInterval == 0)
            KnowledgeConsolidation.Consolidate(network, h);
    }
}
