using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Apd.Samples;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Benchmarks;

/// <summary>
/// Where the time of a task-1 step goes, MLP 784-256-128, batch 100: the plain network's forward+backward and Adam
/// against APD's forward+backward of the task loss alone, its full <c>Backward</c> (with the in-place gradients of the
/// other terms), <see cref="FlatAdam"/> and TorchSharp's Adam over the same parameters. Timed in alternation.
/// </summary>
internal static class StepProfile
{
    public static void Run(FashionMnistSet train, TextWriter output)
    {
        using var x = tensor(train.Images.Take(100).SelectMany(i => i).ToArray(), [100, 784]);
        using var y = tensor(train.Labels.Take(100).Select(l => (long)l).ToArray());
        var plain = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10));
        using var plainAdam = optim.Adam(plain.parameters(), 1e-3);

        var h = new ApdHyperparameters();
        using var network = ApdNetwork.Create(new ApdArchitecture(784, [256, 128], [], null), CPU, 1);
        using var generator = new Generator(7);
        using var session = new TaskTrainingSession(network, "profiled", 10, h, generator);
        var parameters = session.TrainableParameters.ToList();
        using var flatAdam = new FlatAdam(parameters, h.LearningRate);
        using var torchSharpAdam = optim.Adam(parameters, h.LearningRate);   // stepped on the same gradients, only timed

        output.WriteLine("## Task-1 step, MLP 784-256-128, batch 100: medians in ms (two rounds of 200 alternations)");
        output.WriteLine("plain fwd+bwd | plain Adam | APD task-loss fwd+bwd | APD Backward | FlatAdam | TorchSharp Adam on APD's parameters");
        for (int round = 0; round < 2; round++)
        {
            var medians = Measure.InterleavedMedianMilliseconds([
                () => { using var s = NewDisposeScope(); plainAdam.zero_grad(); nn.functional.cross_entropy(plain.call(x), y).backward(); },
                () => { using var s = NewDisposeScope(); plainAdam.step(); },
                () => { using var s = NewDisposeScope(); foreach (var p in parameters) p.grad!.zero_(); nn.functional.cross_entropy(session.Logits(x), y).backward(); },
                () => { using var s = NewDisposeScope(); session.Backward(x, y); },
                () => flatAdam.Step(),
                () => { using var s = NewDisposeScope(); torchSharpAdam.step(); },
            ], warmup: 10, rounds: 200);
            output.WriteLine(string.Join(" | ", medians.Select(m => $"{m:F3}")));
        }
        plain.Dispose();
    }
}
