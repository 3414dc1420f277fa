using Microsoft.ML.Apd.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Engine;

/// <summary>Tiny synthetic tasks and fast hyperparameters for engine tests.</summary>
internal static class EngineTestData
{
    public static readonly ApdArchitecture SmallMlp = new(8, [16, 8], [], null);
    public static readonly ApdArchitecture SmallCnn = new(64, [6], [new ConvolutionBlock(3, 3)], new ImageLayout(1, 8, 8));

    /// <summary>The authors' algorithm, short: engine tests check its mechanisms; CompactTests the compactness levers.</summary>
    public static ApdHyperparameters QuickSettings => ApdHyperparameters.Paper with
    {
        NumberOfEpochs = 4,
        BatchSize = 25,
        LearningRate = 1e-2,
    };

    /// <summary>Features [n, size] ~ N(0,1); label = 1 when the projection on a task-specific direction is positive
    /// (<paramref name="flip"/> inverts it: a task that conflicts with the unflipped one).</summary>
    public static (Tensor Features, Tensor Labels) Task(int seed, int size = 8, int n = 200, bool flip = false, int direction = -1)
    {
        using var generator = new Generator((ulong)seed);
        using var scope = NewDisposeScope();
        var x = randn([n, size], generator: generator);
        var w = zeros(size);
        w[direction < 0 ? seed % size : direction] = 1;
        var y = (x.matmul(w) > 0);
        if (flip) y = y.logical_not();
        return (x.MoveToOuterDisposeScope(), y.to(ScalarType.Int64).MoveToOuterDisposeScope());
    }

    public static ApdNetwork Train(ApdArchitecture architecture, int tasks, ApdHyperparameters h, int seed = 1)
    {
        var network = ApdNetwork.Create(architecture, CPU, seed);
        for (int t = 0; t < tasks; t++)
        {
            var (x, y) = Task(100 + t, architecture.InputSize);
            using (x) using (y) ApdLearner.LearnTask(network, $"t{t}", 2, x, y, h, null, CancellationToken.None);
        }
        return network;
    }

    public static float[] Logits(ApdNetwork network, string task, Tensor x)
    {
        using var logits = network.Forward(x, task);
        return logits.data<float>().ToArray();
    }

    public static double Accuracy(ApdNetwork network, string task, Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        var logits = network.Forward(x, task);
        return logits.argmax(1).eq(y).to(ScalarType.Float64).mean().item<double>();
    }

    /// <summary>Every task's logits from <see cref="ApdNetwork.ForwardAll"/> equal <see cref="ApdNetwork.Forward"/>'s to float rounding.</summary>
    public static void AssertForwardAllMatchesForward(ApdNetwork network, Tensor x)
    {
        var all = network.ForwardAll(x, network.Tasks);
        for (int t = 0; t < network.Tasks.Count; t++)
            using (all[t])
            {
                var expected = Logits(network, network.Tasks[t], x);
                var actual = all[t].data<float>().ToArray();
                for (int i = 0; i < expected.Length; i++)
                    Assert.AreEqual(expected[i], actual[i], 1e-4 * (1 + Math.Abs(expected[i])), $"{network.Tasks[t]}[{i}]");
            }
    }

    public static byte[] Serialize(ApdNetwork network)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) network.Save(writer);
        return stream.ToArray();
    }

    /// <summary>Collects progress reports synchronously (<see cref="Progress{T}"/> would post them to the thread pool).</summary>
    public sealed class Collect(List<TaskTrainingProgress> into) : IProgress<TaskTrainingProgress>
    {
        public void Report(TaskTrainingProgress value) => into.Add(value);
    }
}
