using Microsoft.ML.Apd.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Engine;

/// <summary>The learning rate over a task's steps: the half cosine (the low-rank factors' default) and the authors' decay
/// per epoch (everything else's), as the training loop applies them.</summary>
[TestClass]
public sealed class LearningRateScheduleTests
{
    /// <summary>The cosine starts at γ, is γ/2 halfway, falls at every step and ends near, not at, 0 — for any number of
    /// epochs; the authors' schedule is γ·decay^epoch, constant within an epoch.</summary>
    [TestMethod]
    public void CosineFallsFromTheLearningRateToNearZeroAndExponentialDecaysPerEpoch()
    {
        foreach (int epochs in new[] { 1, 4, 20 })
        {
            var cosine = new ApdHyperparameters { LearningRate = 1e-3, NumberOfEpochs = epochs, LearningRateSchedule = LearningRateSchedule.Cosine };
            const int steps = 10;
            var rates = Enumerable.Range(0, epochs * steps).Select(s => cosine.LearningRateAt(s / steps, s % steps, steps)).ToList();
            Assert.AreEqual(1e-3, rates[0], 1e-15);
            Assert.AreEqual(0.5e-3, rates[rates.Count / 2], 1e-15, $"{epochs} epochs: halfway");
            for (int s = 1; s < rates.Count; s++) Assert.IsLessThan(rates[s - 1], rates[s], $"{epochs} epochs, step {s}");
            Assert.IsGreaterThan(0.0, rates[^1]);
            Assert.IsLessThan(0.03e-3, rates[^1], $"{epochs} epochs: the last step");
        }
        var defaults = new ApdHyperparameters { LearningRate = 1e-3, NumberOfEpochs = 5 };
        Assert.AreEqual(LearningRateSchedule.ExponentialPerEpoch, defaults.LearningRateSchedule);
        Assert.AreEqual(1e-3, defaults.LearningRateAt(0, 9, 10), 1e-15);
        Assert.AreEqual(1e-3 * 0.95 * 0.95, defaults.LearningRateAt(2, 0, 10), 1e-15);
        Assert.AreEqual(1e-3 * 0.95 * 0.95, defaults.LearningRateAt(2, 9, 10), 1e-15);
        Assert.AreEqual(LearningRateSchedule.Cosine, defaults.LowRankLearningRateSchedule);
        Assert.AreEqual(1e-3 * 10, defaults.LowRankLearningRateAt(0, 0, 10), 1e-15, "γ × LowRankLearningRateMultiplier");
        Assert.AreEqual(1e-3 * 10 / 2, defaults.LowRankLearningRateAt(2, 5, 10), 1e-15, "halfway");
    }

    /// <summary>Training steps at the schedule's rate: the progress of every batch reports the rate its step used, and a
    /// session gives the low-rank factors theirs.</summary>
    [TestMethod]
    public void TrainingUsesTheScheduleAtEveryStep()
    {
        foreach (var schedule in Enum.GetValues<LearningRateSchedule>())
        {
            var h = EngineTestData.QuickSettings with { LearningRateSchedule = schedule, LearningRateDecay = 0.5, LowRankAdaptiveRank = 2 };
            var reports = new List<TaskTrainingProgress>();
            using var network = ApdNetwork.Create(EngineTestData.SmallMlp, CPU, 1);
            var (x, y) = EngineTestData.Task(1);
            using (x) using (y) ApdLearner.TrainTask(network, "t0", 2, x, y, h, new EngineTestData.Collect(reports), CancellationToken.None);
            Assert.HasCount(h.NumberOfEpochs * 8, reports, "200 rows in batches of 25");
            foreach (var p in reports)
                Assert.AreEqual(h.LearningRateAt(p.Epoch - 1, p.Batch - 1, p.NumberOfBatches), p.LearningRate, $"{schedule}, epoch {p.Epoch}, batch {p.Batch}");
            Assert.IsLessThan(h.LearningRate / 4, reports[^1].LearningRate, $"{schedule}: the last step is slower than the first");
            using var generator = new Generator(1);
            using var second = new TaskTrainingSession(network, "t1", 2, h, generator);
            CollectionAssert.AreEqual(new[] { h.LearningRateAt(1, 3, 8), h.LowRankLearningRateAt(1, 3, 8) }, second.LearningRatesAt(1, 3, 8));
            Assert.HasCount(2, second.OptimizerGroups[1], "U_t and V_t of the first layer");
        }
    }
}
