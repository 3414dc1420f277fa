using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Apd.Samples;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Benchmarks;

/// <summary>
/// Step time of APD (Fast and Exact) ÷ a plain TorchSharp network of the same shape, optimizer and batch size, while
/// learning task 1, 5, 10, 20 and 50. Earlier tasks are permuted Fashion-MNIST trained as in the authors' protocol
/// (the first 12,000 training images — 120 batches — for 5 epochs, Fast), so their τ are as sparse as real training
/// makes them; the step measured is one full APD step (objective, backward, gradient scaling, Adam) on a batch of 100.
/// </summary>
internal static class StepTimes
{
    public static void Run(FashionMnistSet train, string architectures, int lastTask, TextWriter output)
    {
        int[] checkpoints = new[] { 1, 5, 10, 20, 50 }.Where(t => t <= lastTask).ToArray();
        var taskData = new FashionMnistSet(train.Images.Take(12_000).ToArray(), train.Labels.Take(12_000).ToArray());
        if (architectures.Contains("mlp"))
            Measure(output, "MLP 784-256-128", new ApdArchitecture(784, [256, 128], [], null), convolutional: false, taskData, checkpoints);
        if (architectures.Contains("conv"))
            Measure(output, "LeNet conv 20-50 (5×5), fc 800-500, on 1×28×28",
                new ApdArchitecture(784, [800, 500], [new ConvolutionBlock(20), new ConvolutionBlock(50)], new ImageLayout(1, 28, 28)),
                convolutional: true, taskData, checkpoints);
    }

    private static void Measure(TextWriter output, string name, ApdArchitecture architecture, bool convolutional, FashionMnistSet train, int[] checkpoints)
    {
        output.WriteLine($"## Step time ÷ plain network, {name}, batch 100, Adam");
        output.WriteLine("task | plain ms | Fast ms | Fast ÷ plain | Exact ms | Exact ÷ plain | plain, flat Adam ms | Fast ÷ that | earlier τ non-zeros");
        var build = new ApdHyperparameters { RetroactiveUpdate = RetroactiveUpdateMode.Fast };
        using var network = ApdNetwork.Create(architecture, CPU, 1);
        using var batchX = tensor(train.Images.Take(100).SelectMany(i => i).ToArray(), [100, 784]);
        using var batchY = tensor(train.Labels.Take(100).Select(l => (long)l).ToArray());
        using var plain = new PlainNetwork(convolutional, flatAdam: false, architecture.HiddenLayerSizes[0], architecture.HiddenLayerSizes[1]);
        using var plainFlat = new PlainNetwork(convolutional, flatAdam: true, architecture.HiddenLayerSizes[0], architecture.HiddenLayerSizes[1]);
        for (int task = 1; task <= checkpoints[^1]; task++)
        {
            if (checkpoints.Contains(task))
            {
                using var fastStep = new ApdStep(network, build with { RetroactiveUpdate = RetroactiveUpdateMode.Fast }, batchX, batchY);
                using var exactStep = new ApdStep(network, build with { RetroactiveUpdate = RetroactiveUpdateMode.Exact }, batchX, batchY);
                // Exact takes up to a second per step at task 50: fewer rounds there.
                var medians = Benchmarks.Measure.InterleavedMedianMilliseconds(
                    [() => plain.Step(batchX, batchY), () => plainFlat.Step(batchX, batchY), fastStep.Run, exactStep.Run], warmup: 5, rounds: task >= 20 ? 20 : 60);
                double plainMs = medians[0], plainFlatMs = medians[1], fast = medians[2], exact = medians[3];
                long nonZeros = network.GetCapacity().AdaptiveNonZerosPerTask.Values.Sum();
                output.WriteLine($"{task,4} | {plainMs,8:F2} | {fast,7:F2} | {fast / plainMs,12:F2} | {exact,8:F2} | {exact / plainMs,13:F2} | {plainFlatMs,19:F2} | {fast / plainFlatMs,11:F2} | {nonZeros:N0}");
            }
            if (task == checkpoints[^1]) break;
            using var scope = NewDisposeScope();
            var (x, y) = PermutedTask(train, task);
            ApdLearner.LearnTask(network, $"task{task}", 10, x, y, build, null, CancellationToken.None);
        }
    }

    /// <summary>One APD training step for a new task on the network as it is (never committed).</summary>
    private sealed class ApdStep : IDisposable
    {
        private readonly Generator _generator = new(7);
        private readonly TaskTrainingSession _session;
        private readonly FlatAdam _optimizer;
        private readonly Tensor _x, _y;

        public ApdStep(ApdNetwork network, ApdHyperparameters h, Tensor x, Tensor y)
        {
            _session = new TaskTrainingSession(network, "measured", 10, h, _generator);
            _optimizer = new FlatAdam(_session.TrainableParameters.ToList(), h.LearningRate);
            (_x, _y) = (x, y);
        }

        public void Run()
        {
            using var scope = NewDisposeScope();
            _session.Step(_optimizer, _x, _y);
        }

        public void Dispose()
        {
            _optimizer.Dispose();
            _session.Dispose();
            _generator.Dispose();
        }
    }

    /// <summary>All ten classes with the pixels shuffled by a fixed permutation per task (seeded by the task number).</summary>
    public static (Tensor Features, Tensor Labels) PermutedTask(FashionMnistSet set, int task)
    {
        var permutation = Enumerable.Range(0, FashionMnist.ImageSize).ToArray();
        new Random(task).Shuffle(permutation);
        var pixels = new float[set.Count * FashionMnist.ImageSize];
        for (int i = 0; i < set.Count; i++)
            for (int p = 0; p < FashionMnist.ImageSize; p++)
                pixels[i * FashionMnist.ImageSize + p] = set.Images[i][permutation[p]];
        return (tensor(pixels, [set.Count, FashionMnist.ImageSize]), tensor(set.Labels.Select(l => (long)l).ToArray()));
    }
}
