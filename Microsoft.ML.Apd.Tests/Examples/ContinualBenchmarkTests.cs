using Microsoft.ML.Apd.Samples.Continual;

namespace Microsoft.ML.Apd.Tests.Examples;

/// <summary>Tiny end-to-end runs of each scenario through the code path of the ContinualFashionMnist program.</summary>
[TestClass]
public sealed class ContinualBenchmarkTests
{
    private static FashionMnistTensors? s_data;

    [ClassInitialize]
    public static void LoadData(TestContext _) => s_data = FashionMnistTensors.FromSubset();

    [ClassCleanup]
    public static void DisposeData() => s_data?.Dispose();

    [TestMethod]
    [DataRow("split", 2)]
    [DataRow("permuted", 1)]
    [DataRow("rotated", 1)]
    public void TinyRunWritesResultsAndCharts(string scenario, int orders)
    {
        string output = Path.Combine(Path.GetTempPath(), $"apd-benchmark-test-{scenario}-{Guid.NewGuid():N}");
        try
        {
            var settings = CommandLineOptions.Parse(["--scenario", scenario, "--tasks", "2", "--epochs", "1", "--orders", orders.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--train-limit", "100", "--test-limit", "50", "--methods", "apd,finetune,stl,ewc", "--out", output]);

            var results = ConsoleProgress.Run(progress => ContinualBenchmark.Run(settings, s_data!, progress));

            Assert.HasCount(4 * orders, results.Runs);
            foreach (var run in results.Runs)
            {
                Assert.HasCount(2, run.Accuracy);
                Assert.HasCount(1, run.Accuracy[0]);
                Assert.HasCount(2, run.Accuracy[1]);
                Assert.IsTrue(run.Accuracy.SelectMany(row => row).All(a => a is >= 0 and <= 1));
            }
            var stl = results.Summaries.Single(s => s.Method == "stl");
            Assert.AreEqual(0, stl.BackwardTransfer, "independent networks forget nothing");
            Assert.IsGreaterThan(1.9, stl.Capacity);
            Assert.AreEqual(orders > 1, stl.Opd is not null, "OPD needs several orders");
            var apd = results.Summaries.Single(s => s.Method == "apd");
            Assert.IsGreaterThan(0.0, apd.Capacity);
            foreach (var file in new[] { "results.json", "accuracy-matrix.png", "capacity.png", "average-accuracy.png", "apd-model.zip" })
                Assert.IsTrue(File.Exists(Path.Combine(output, file)), file);
        }
        finally
        {
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
    }

    [TestMethod]
    public void ApdOptionsDefaultToTheLibrarysAndAreParsed()
    {
        var defaults = CommandLineOptions.Parse([]);
        Assert.AreEqual(new ApdTrainer.Options().SparsityStrength, defaults.ApdSparsityStrength);
        Assert.AreEqual(new ApdTrainer.Options().RetroactiveUpdate, defaults.ApdRetroactiveUpdate);
        var settings = CommandLineOptions.Parse(["--apd-sparsity", "8e-4", "--apd-retroactive", "exact"]);
        Assert.AreEqual(8e-4, settings.ApdSparsityStrength);
        Assert.AreEqual(RetroactiveUpdateMode.Exact, settings.ApdRetroactiveUpdate);

        var library = new ApdTrainer.Options().ToHyperparameters(1);
        Assert.AreEqual(library with { Seed = 1 }, ApdMethod.Options(defaults).ToHyperparameters(1));
        var paper = CommandLineOptions.Parse(["--apd-preset", "paper"]);
        Assert.AreEqual(ApdTrainer.Options.Paper().ToHyperparameters(1), ApdMethod.Options(paper).ToHyperparameters(1));
        var levers = ApdMethod.Options(CommandLineOptions.Parse(["--apd-preset", "paper", "--apd-prox", "0.4", "--apd-zero-start", "true",
            "--apd-first-task-adaptive", "false", "--apd-mask-logit", "3", "--apd-half", "true"]));
        Assert.AreEqual((0.4, true, false, (double?)3, true),
            (levers.ProximalStrength, levers.AdaptiveStartsAtZero, levers.TrainFirstTaskAdaptive, levers.InitialMaskLogit, levers.HalfPrecisionStorage));
        Assert.IsNull(ApdMethod.Options(CommandLineOptions.Parse(["--apd-mask-logit", "random"])).InitialMaskLogit);
        var schedule = ApdMethod.Options(CommandLineOptions.Parse(["--apd-lr-schedule", "cosine", "--apd-lr-decay", "0.6", "--apd-rank-lr-schedule", "exponentialperepoch"]));
        Assert.AreEqual((LearningRateSchedule.Cosine, 0.6, LearningRateSchedule.ExponentialPerEpoch),
            (schedule.LearningRateSchedule, schedule.LearningRateDecay, schedule.LowRankLearningRateSchedule));
    }

    [TestMethod]
    public void RotatedTaskTurnsImages()
    {
        using var quarterTurn = new RotatedImagesTask(90).Materialize(s_data!.Test, limit: 1);
        using var none = new RotatedImagesTask(0).Materialize(s_data.Test, limit: 1);
        var original = s_data.Test.Images[0].view(28, 28);
        // Pixel centres map onto pixel centres at 0° and 90°, so both are exact up to rounding.
        Assert.IsLessThan(1e-4f, (none.Images[0].view(28, 28) - original).abs().max().item<float>());
        var turned = quarterTurn.Images[0].view(28, 28);
        float difference = Math.Min((turned - original.rot90(1, (0, 1))).abs().max().item<float>(),
            (turned - original.rot90(-1, (0, 1))).abs().max().item<float>());
        Assert.IsLessThan(1e-4f, difference);
    }
}
