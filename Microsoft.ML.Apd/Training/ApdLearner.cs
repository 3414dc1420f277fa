using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>Trains one task on batches of tensors (<see cref="IBatchSource"/>); knows nothing of IDataView.</summary>
internal static class ApdLearner
{
    /// <summary>
    /// What <see cref="ApdTrainer"/> does for each task: <see cref="TrainTask(ApdNetwork, string, int, IBatchSource, ApdHyperparameters, IProgress{TaskTrainingProgress}?, CancellationToken)"/>,
    /// then knowledge consolidation when the schedule says it is due (<see cref="KnowledgeConsolidation.IsDue"/>), then,
    /// when as many tasks follow σ as the retroactive window holds, their freeze (<see cref="ApdNetwork.FreezeFollowingTasks"/>).
    /// </summary>
    public static void LearnTask(ApdNetwork network, string task, int classCount, IBatchSource rows,
        ApdHyperparameters hyperparameters, IProgress<TaskTrainingProgress>? progress, CancellationToken cancellation)
    {
        TrainTask(network, task, classCount, rows, hyperparameters, progress, cancellation);
        if (KnowledgeConsolidation.IsDue(network, hyperparameters.ConsolidationInterval))
        {
            KnowledgeConsolidation.Consolidate(network, hyperparameters);
            if (network.FindNonFiniteAfterConsolidation() is { } where)
                throw new NotFiniteNumberException($"Task '{task}': after knowledge consolidation, {where} is NaN or infinite.");
        }
        if (hyperparameters.RetroactiveWindow > 0 && network.FollowingTasks.Count >= hyperparameters.RetroactiveWindow)
            network.FreezeFollowingTasks();
    }

    /// <summary><see cref="LearnTask(ApdNetwork, string, int, IBatchSource, ApdHyperparameters, IProgress{TaskTrainingProgress}?, CancellationToken)"/> on rows held in tensors.</summary>
    public static void LearnTask(ApdNetwork network, string task, int classCount, Tensor features, Tensor labels,
        ApdHyperparameters hyperparameters, IProgress<TaskTrainingProgress>? progress, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(network);
        using var rows = new TensorBatchSource(features, labels, network.Architecture.InputSize, classCount, network.Device);
        LearnTask(network, task, classCount, rows, hyperparameters, progress, cancellation);
    }

    /// <summary>
    /// Appends <paramref name="task"/> to <paramref name="network"/> (mutating it) and trains it with the APD objective
    /// and retroactive update on rows held in tensors, without consolidation: <paramref name="features"/> [N, InputSize]
    /// float32 and <paramref name="labels"/> [N] int64 in 0..classCount-1, on any device. See the
    /// <see cref="IBatchSource"/> overload.
    /// </summary>
    public static void TrainTask(ApdNetwork network, string task, int classCount, Tensor features, Tensor labels,
        ApdHyperparameters hyperparameters, IProgress<TaskTrainingProgress>? progress, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(network);
        using var rows = new TensorBatchSource(features, labels, network.Architecture.InputSize, classCount, network.Device);
        TrainTask(network, task, classCount, rows, hyperparameters, progress, cancellation);
    }

    /// <summary>
    /// Appends <paramref name="task"/> to <paramref name="network"/> (mutating it) and trains it with the APD objective
    /// and retroactive update on the batches of <paramref name="rows"/>; no consolidation (<c>LearnTask</c> adds it). Throws <see cref="OperationCanceledException"/> at the next batch when cancelled, and whatever
    /// <paramref name="rows"/> throws; the network is then in an undefined state (callers train a clone).
    /// </summary>
    public static void TrainTask(ApdNetwork network, string task, int classCount, IBatchSource rows,
        ApdHyperparameters hyperparameters, IProgress<TaskTrainingProgress>? progress, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentException.ThrowIfNullOrEmpty(task);
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(hyperparameters);
        if (network.Tasks.Contains(task)) throw new InvalidOperationException($"Task '{task}' has already been learned.");
        ArgumentOutOfRangeException.ThrowIfLessThan(classCount, 1);
        var h = hyperparameters;
        ArgumentOutOfRangeException.ThrowIfLessThan(h.BatchSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(h.NumberOfEpochs);
        long count = rows.RowCount;
        if (count <= 0) throw new ArgumentException("No training rows.", nameof(rows));

        var device = network.Device;
        int inputSize = network.Architecture.InputSize;
        // One generator per task, derived from the seed and the task's position: same seed ⇒ same run.
        using var generator = new Generator((ulong)(h.Seed * 1_000_003L + network.Tasks.Count + 1), device);
        network.InvalidateCache();
        using var session = new TaskTrainingSession(network, task, classCount, h, generator);
        using var optimizer = new FlatAdam(session.OptimizerGroups);
        // The task's model of its inputs, from the first epoch's rows (every epoch delivers every row once).
        using var inputs = new TaskInputModel.Accumulator(inputSize, device);
        int batches = (int)((count + h.BatchSize - 1) / h.BatchSize);
        var clock = Stopwatch.StartNew();
        double largestFeature = 0; // of the batches trained so far, for the divergence message
        for (int epoch = 0; epoch < h.NumberOfEpochs; epoch++)
        {
            int batch = 0;
            foreach (var (features, labels) in rows.Epoch(h.BatchSize, generator, cancellation))
            {
                using var x = features;
                using var y = labels;
                using var scope = NewDisposeScope();
                cancellation.ThrowIfCancellationRequested();
                if (x.dim() != 2 || x.shape[1] != inputSize || y.dim() != 1 || y.shape[0] != x.shape[0] || ++batch > batches)
                    throw new InvalidOperationException($"The batch source of task '{task}' delivered a batch of shape [{string.Join(", ", x.shape)}] / [{string.Join(", ", y.shape)}] (batch {batch} of {batches}).");
                largestFeature = Math.Max(largestFeature, x.abs().max().item<float>());
                if (epoch == 0) inputs.Add(x);
                session.LearningRatesAt(epoch, batch - 1, batches).CopyTo(optimizer.LearningRates, 0);
                float loss = session.Step(optimizer, x.to(device), y.to(device)).item<float>();
                if (!float.IsFinite(loss))
                    throw Diverged(task, epoch, h, $"batch {batch}/{batches}: the loss became {loss}", loss, largestFeature);
                progress?.Report(new TaskTrainingProgress(task, epoch + 1, h.NumberOfEpochs, batch, batches, loss, clock.Elapsed, optimizer.LearningRates[0]));
            }
            if (batch != batches)
                throw new InvalidOperationException($"The batch source of task '{task}' delivered {batch} batches in epoch {epoch + 1}, expected {batches}.");
            if (!optimizer.ValuesAreFinite())
                throw Diverged(task, epoch, h, "the parameters became NaN or infinite", double.NaN, largestFeature);
            if (epoch + 1 < h.NumberOfEpochs) session.Retroactive.Refresh(session.Shared);
        }
        session.Commit(h.NumberOfEpochs > 0 ? inputs.ToModel() : null);
        if (network.FindNonFiniteAfterTraining(task) is { } where)
            throw Diverged(task, h.NumberOfEpochs - 1, h, $"after training, {where} is NaN or infinite", double.NaN, largestFeature);
    }

    /// <summary>The error for a diverged task: where it happened and the two usual causes, with the numbers to check.</summary>
    private static NotFiniteNumberException Diverged(string task, int epoch, ApdHyperparameters h, string what, double value, double largest)
    {
        return new NotFiniteNumberException(
            $"Training task '{task}' diverged in epoch {epoch + 1}/{h.NumberOfEpochs} ({what}). Likely causes: a learning rate " +
            $"too large for these features (LearningRate = {h.LearningRate:G4}), or features that are not normalized (the " +
            $"largest |feature| of the task so far is {largest:G4}); lower the LearningRate or scale the features (e.g. " +
            "mlContext.Transforms.NormalizeMinMax). The model was not changed: the previous model and every earlier transformer are intact.",
            value);
    }
}
