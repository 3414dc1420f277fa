using System.Diagnostics;
using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Apd.Samples;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Benchmarks;

/// <summary>
/// The authors' protocol on the engine: Split Fashion-MNIST (5 tasks of 2 classes), MLP 784-256-128, 2-way heads,
/// batch 100, Adam 1e-3 ×0.95 per epoch, the authors' λs and algorithm (<see cref="ApdHyperparameters.Paper"/>), consolidation after task 5. Prints the accuracy matrix, capacity
/// before and after consolidation, and seconds per epoch per task, for the chosen retroactive update.
/// </summary>
internal static class SplitFashionMnistEngine
{
    public static void Run(FashionMnistSet train, FashionMnistSet test, RetroactiveUpdateMode mode, int epochs, TextWriter output)
    {
        var h = ApdHyperparameters.Paper with { NumberOfEpochs = epochs, RetroactiveUpdate = mode };
        using var network = ApdNetwork.Create(new ApdArchitecture(784, [256, 128], [], null), CPU, h.Seed);
        int tasks = SplitFashionMnist.TaskCount;
        var accuracy = new double[tasks, tasks];
        output.WriteLine($"## Split Fashion-MNIST, {mode}, {epochs} epochs, {train.Count} train / {test.Count} test images");
        for (int t = 0; t < tasks; t++)
        {
            using var scope = NewDisposeScope();
            var (x, y) = Task(train, t);
            var watch = Stopwatch.StartNew();
            // Capacity just before the consolidation that follows the last task: train it alone, then consolidate.
            bool last = t == tasks - 1;
            if (last) ApdLearner.TrainTask(network, $"task{t}", 2, x, y, h, null, CancellationToken.None);
            else ApdLearner.LearnTask(network, $"task{t}", 2, x, y, h, null, CancellationToken.None);
            double seconds = watch.Elapsed.TotalSeconds;
            if (last)
            {
                output.WriteLine($"capacity before consolidation: {network.GetCapacity().Capacity:F3}");
                KnowledgeConsolidation.Consolidate(network, h);
                output.WriteLine($"capacity after consolidation:  {network.GetCapacity().Capacity:F3}");
            }
            for (int j = 0; j <= t; j++) accuracy[t, j] = Accuracy(network, test, j);
            var report = network.GetCapacity();
            output.WriteLine($"task {t + 1}: {seconds / epochs:F2} s/epoch, capacity {report.Capacity:F3}, τ non-zeros {report.AdaptiveNonZerosPerTask[$"task{t}"]:N0} " +
                $"({100.0 * report.AdaptiveNonZerosPerTask[$"task{t}"] / (784 * 256 + 256 * 128):F2} % of the layer weights)");
        }
        output.WriteLine("accuracy matrix (row: after task i; column: task j), %:");
        for (int i = 0; i < tasks; i++)
            output.WriteLine(string.Join(" ", Enumerable.Range(0, i + 1).Select(j => $"{100 * accuracy[i, j],6:F2}")));
        double average = Enumerable.Range(0, tasks).Average(j => accuracy[tasks - 1, j]);
        double worstDrop = Enumerable.Range(0, tasks).Max(j => accuracy[j, j] - accuracy[tasks - 1, j]);
        output.WriteLine($"final average accuracy {100 * average:F2} %, worst drop {100 * worstDrop:F2} points");
    }

    /// <summary>Task t of <see cref="SplitFashionMnist"/>, its classes relabelled 0/1.</summary>
    public static (Tensor Features, Tensor Labels) Task(FashionMnistSet set, int t)
    {
        var classes = SplitFashionMnist.ClassPairs[t];
        var rows = SplitFashionMnist.Rows(set, classes);
        var features = tensor(rows.SelectMany(i => set.Images[i]).ToArray(), [rows.Length, 784]);
        var labels = tensor(rows.Select(i => (long)SplitFashionMnist.LocalLabel(classes, set.Labels[i])).ToArray());
        return (features, labels);
    }

    private static double Accuracy(ApdNetwork network, FashionMnistSet test, int t)
    {
        using var scope = NewDisposeScope();
        var (x, y) = Task(test, t);
        return network.Forward(x, $"task{t}").argmax(1).eq(y).to(ScalarType.Float64).mean().item<double>();
    }
}
