using System.Diagnostics;

namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>
/// Trains one method on tasks in a given order and, after each task, measures the accuracy on every task learned so
/// far — the loop behind the accuracy matrix.
/// </summary>
public static class ExperimentRunner
{
    /// <param name="onMethodFinished">Sees the method before it is disposed, e.g. to save APD's model.</param>
    public static MethodRun Run(string methodName, TaskOrder order, IReadOnlyList<ContinualTask> scenario, FashionMnistTensors data,
        ExperimentSettings settings, IProgress<TrainingStep> progress, Action<IContinualMethod>? onMethodFinished = null)
    {
        var tasks = order.Apply(scenario);
        bool peakIsPerMethod = PeakMemory.TryReset();
        TorchSharp.torch.random.manual_seed(settings.Seed);
        using var method = ContinualMethods.Create(methodName, settings);

        var accuracy = new List<IReadOnlyList<double>>();
        var capacity = new List<double>();
        var savedBytes = new List<long?>();
        var training = new Stopwatch();
        for (int i = 0; i < tasks.Count; i++)
        {
            training.Start();
            method.Learn(new TaskRows(tasks[i], data.Train, settings.TrainLimit), progress);
            training.Stop();
            accuracy.Add(tasks.Take(i + 1).Select(task => method.Accuracy(new TaskRows(task, data.Test, settings.TestLimit))).ToArray());
            capacity.Add(method.Capacity);
            savedBytes.Add(method.SavedBytes);
        }
        onMethodFinished?.Invoke(method);
        return new MethodRun(methodName, order.Description, tasks.Select(t => t.Name).ToArray(), accuracy, capacity,
            training.Elapsed.TotalSeconds, PeakMemory.Bytes(), peakIsPerMethod, savedBytes.Any(b => b is not null) ? savedBytes : null);
    }
}
