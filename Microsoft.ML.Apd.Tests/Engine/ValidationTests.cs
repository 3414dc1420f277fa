using Microsoft.ML.Apd.Engine;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Engine;

[TestClass]
public sealed class ValidationTests
{
    [TestMethod]
    public void InvalidArchitecturesAreRejected()
    {
        Assert.ThrowsExactly<ArgumentException>(() => ApdNetwork.Create(new ApdArchitecture(0, [4], [], null), CPU, 1));
        Assert.ThrowsExactly<ArgumentException>(() => ApdNetwork.Create(new ApdArchitecture(64, [4], [new ConvolutionBlock(2, 3)], null), CPU, 1));
        Assert.ThrowsExactly<ArgumentException>(() => ApdNetwork.Create(new ApdArchitecture(64, [4], [new ConvolutionBlock(2, 9)], new ImageLayout(1, 8, 8)), CPU, 1));
        Assert.ThrowsExactly<ArgumentException>(() => ApdNetwork.Create(new ApdArchitecture(63, [4], [new ConvolutionBlock(2, 3)], new ImageLayout(1, 8, 8)), CPU, 1));
    }

    [TestMethod]
    public void BadTrainingInputIsRejectedBeforeTheNetworkChanges()
    {
        using var network = ApdNetwork.Create(EngineTestData.SmallMlp, CPU, 1);
        var h = EngineTestData.QuickSettings with { NumberOfEpochs = 1 };
        using var x = zeros(10, 8);
        using var badLabels = full(10, 2L);
        Assert.ThrowsExactly<ArgumentException>(() => ApdLearner.LearnTask(network, "a", 2, x, badLabels, h, null, CancellationToken.None));
        using var wrongWidth = zeros(10, 7);
        using var labels = zeros(10, dtype: ScalarType.Int64);
        Assert.ThrowsExactly<ArgumentException>(() => ApdLearner.LearnTask(network, "a", 2, wrongWidth, labels, h, null, CancellationToken.None));
        Assert.IsEmpty(network.Tasks);
        Assert.ThrowsExactly<KeyNotFoundException>(() => network.Forward(x, "a"));
    }

    [TestMethod]
    public void ProgressIsReportedEveryBatch()
    {
        using var network = ApdNetwork.Create(EngineTestData.SmallMlp, CPU, 1);
        var (x, y) = EngineTestData.Task(1, n: 100);
        var reports = new List<TaskTrainingProgress>();
        using (x) using (y)
            ApdLearner.LearnTask(network, "a", 2, x, y, EngineTestData.QuickSettings with { NumberOfEpochs = 2 }, new EngineTestData.Collect(reports), CancellationToken.None);
        Assert.HasCount(8, reports); // 2 epochs × 4 batches of 25
        Assert.AreEqual(2, reports[^1].Epoch);
        Assert.AreEqual(4, reports[^1].NumberOfBatches);
        Assert.IsTrue(reports.All(r => double.IsFinite(r.Loss) && r.Task == "a"));
    }
}
