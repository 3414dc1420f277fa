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
    /// on any device. Throws <see cref="OperationCanceledException"/> at the next batch when cancelled, and
    /// <see cref="NotFiniteNumberException"/> when training diverges (a batch's loss, the parameters after an epoch, or
    /// the network after commit and consolidation is not finite); the network is then in an undefined state (callers
    /// train a clone).
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
                float loss = session.Step(optimizer, x.index_select(0, rows), y.index_select(0, rows)).item<float>();
                if (!float.IsFinite(loss))
                    throw Diverged(task, epoch, h, $"batch {batch + 1}/{batches}: the loss became {loss}", loss, x);
                progress?.Report(new TaskTrainingProgress(task, epoch + 1, h.NumberOfEpochs, batch + 1, batches, loss, clock.Elapsed));
            }
            if (!optimizer.ValuesAreFinite())
                throw Diverged(task, epoch, h, "the parameters became NaN or infinite", double.NaN, x);
            if (epoch + 1 < h.NumberOfEpochs) session.Retroactive.Refresh(session.Shared);
        }
        session.Commit();
        if (h.ConsolidationInterval > 0 && network.Tasks.Count % h.ConsolidationInterval == 0)
            KnowledgeConsolidation.Consolidate(network, h);
        if (network.FindNonFinite() is { } where)
            throw Diverged(task, h.NumberOfEpochs - 1, h, $"after training, {where} is NaN or infinite", double.NaN, x);
    }

    /// <summary>The error for a diverged task: where it happened and the two usual causes, with the numbers to check.</summary>
    private static NotFiniteNumberException Diverged(string task, int epoch, ApdHyperparameters h, string what, double value, Tensor features)
    {
        double largest;
        using (no_grad())
        using (NewDisposeScope())
            largest = features.abs().max().item<float>();
        return new NotFiniteNumberException(
            $"Training task '{task}' diverged in epoch {epoch + 1}/{h.NumberOfEpochs} ({what}). Likely causes: a learning rate " +
            $"too large for these features (LearningRate = {h.LearningRate:G4}), or features that are not normalized (the " +
            $"largest |feature| of the task is {largest:G4}); lower the LearningRate or scale the features (e.g. " +
            "mlContext.Transforms.NormalizeMinMax). The model was not changed: the previous model and every earlier transformer are intact.",
            value);
    }
}
