using Microsoft.ML.Apd.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Engine;

[TestClass]
public sealed class FlatAdamTests
{
    /// <summary>Two copies of a small network trained on the same batches, one with TorchSharp's Adam and one with
    /// <see cref="FlatAdam"/> (which rebinds the parameters into one buffer): same values after every step, and the
    /// learning rate can change between steps as the learner's decay does.</summary>
    [TestMethod]
    public void FlatAdamFollowsTorchSharpAdam()
    {
        nn.Module<Tensor, Tensor> Network()
        {
            random.manual_seed(5);
            return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3));
        }
        using var reference = Network();
        using var flat = Network();
        var referenceParameters = reference.parameters().ToList();
        var flatParameters = flat.parameters().ToList();
        using var adam = optim.Adam(referenceParameters, 1e-2);
        using var flatAdam = new FlatAdam(flatParameters, 1e-2);
        using var generator = new Generator(2);
        for (int step = 0; step < 20; step++)
        {
            using var scope = NewDisposeScope();
            if (step == 10)
            {
                foreach (var group in adam.ParamGroups) group.LearningRate = 3e-3;
                flatAdam.LearningRates[0] = 3e-3;
            }
            var x = randn([32, 8], generator: generator);
            var y = randint(0, 3, [32], generator: generator);
            adam.zero_grad();
            nn.functional.cross_entropy(reference.call(x), y).backward();
            adam.step();
            foreach (var p in flatParameters) p.grad!.zero_();
            nn.functional.cross_entropy(flat.call(x), y).backward();
            flatAdam.Step();
            for (int i = 0; i < referenceParameters.Count; i++)
                Assert.IsLessThan(1e-6f, (referenceParameters[i] - flatParameters[i]).abs().max().item<float>(), $"step {step}, parameter {i}");
        }
        Assert.IsGreaterThan(0.01f, (referenceParameters[0] - Network().parameters().First()).abs().max().item<float>(), "the parameters moved");
    }
}
