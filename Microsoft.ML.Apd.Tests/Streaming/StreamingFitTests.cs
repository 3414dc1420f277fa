using Microsoft.ML;
using Microsoft.ML.Apd.Persistence;
using Microsoft.ML.Apd.Tests.MLNet;
using Microsoft.ML.Apd.Tests.Reliability;

namespace Microsoft.ML.Apd.Tests.Streaming;

/// <summary>Fit streams a task from its IDataView every epoch, or holds it in memory once; both train the same model.</summary>
[TestClass]
public sealed class StreamingFitTests
{
    private static IDataView TwoTasks(MLContext ml) => ml.Data.LoadFromEnumerable(
        TinyData.Rows(0, "a", "b", 150, seed: 3).Concat(TinyData.Rows(1, "c", "d", 150, seed: 3)).ToList());

    private static ApdTrainer.Options Options(TrainingDataLoading loading, int pool = 50_000)
    {
        var o = TinyData.FastOptions();
        o.DataLoading = loading;
        o.ShufflePoolSize = pool;
        return o;
    }

    private static List<float[]> FitAndScore(ApdTrainer.Options options, Func<MLContext, IDataView>? data = null)
    {
        var ml = new MLContext(seed: 1);
        var input = (data ?? TwoTasks)(ml);
        using var model = ml.MulticlassClassification.Trainers.Apd(options).Fit(input);
        return TinyData.Scores(model.Transform(input));
    }

    /// <summary>Mean test accuracy over both tasks (fresh rows of the same rule), evaluated by ML.NET.</summary>
    private static double Accuracy(ApdTransformer model, MLContext ml) => new[] { 0, 1 }.Average(t =>
    {
        var test = ml.Data.LoadFromEnumerable(TinyData.Rows(t, t == 0 ? "a" : "c", t == 0 ? "b" : "d", 300, seed: 77).ToList());
        using var view = model.ForTask("t" + t);
        return ml.MulticlassClassification.Evaluate(view.Transform(test)).MicroAccuracy;
    });

    [TestMethod]
    public void StreamingWithAPoolHoldingTheTaskTrainsTheInMemoryModel()
    {
        var inMemory = FitAndScore(Options(TrainingDataLoading.InMemory));
        var streamed = FitAndScore(Options(TrainingDataLoading.Streaming, pool: 150));
        var auto = FitAndScore(new ApdTrainer.Options { HiddenLayerSizes = new[] { 16 }, NumberOfEpochs = 8, BatchSize = 20, LearningRate = 1e-2, Seed = 1, InMemoryLimitMegabytes = 0 });
        // Same rows in the same order (one randperm of the same generator per epoch): the same model, up to libtorch's
        // summation order under load.
        ReliabilityData.AssertSameScores(inMemory, streamed);
        ReliabilityData.AssertSameScores(inMemory, auto);
    }

    [TestMethod]
    public void StreamingWithASmallPoolIsDeterministicAndLearnsAsWellWithinThreePoints()
    {
        var ml = new MLContext(seed: 1);
        var data = TwoTasks(ml);
        using var inMemory = ml.MulticlassClassification.Trainers.Apd(Options(TrainingDataLoading.InMemory)).Fit(data);
        using var first = ml.MulticlassClassification.Trainers.Apd(Options(TrainingDataLoading.Streaming, pool: 16)).Fit(data);
        using var second = ml.MulticlassClassification.Trainers.Apd(Options(TrainingDataLoading.Streaming, pool: 16)).Fit(data);
        ReliabilityData.AssertSameScores(TinyData.Scores(first.Transform(data)), TinyData.Scores(second.Transform(data)));
        // A 16-row pool visits the rows in another order than a full shuffle, so the model differs; on these separable
        // tasks both must learn (≥ 90 % on fresh rows) and end within 3 points of each other.
        double full = Accuracy(inMemory, ml), pooled = Accuracy(first, ml);
        Assert.IsGreaterThanOrEqualTo(0.9, full, $"in memory {full:P1}, streamed {pooled:P1}");
        Assert.IsLessThanOrEqualTo(0.03, Math.Abs(pooled - full), $"in memory {full:P1}, streamed {pooled:P1}");
    }

    [TestMethod]
    public void AStreamedTaskLargerThanMemoryBudgetKeepsNoRows()
    {
        // 40,000 rows × 784 features = 125 MB of floats; a 256-row pool holds 0.8 MB.
        var view = new GeneratedDataView(40_000, 784);
        var options = new ApdTrainer.Options
        {
            HiddenLayerSizes = new[] { 8 }, NumberOfEpochs = 2, BatchSize = 500, Seed = 1,
            InMemoryLimitMegabytes = 16, ShufflePoolSize = 256,
        };
        long baseline = GC.GetTotalMemory(forceFullCollection: true), peak = 0;
        int batches = 0;
        options.Progress = new SyncProgress<ApdTrainingProgress>(_ =>
        {
            if (++batches % 20 == 0) peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true) - baseline);
        });
        var ml = new MLContext(seed: 1);
        using var model = ml.MulticlassClassification.Trainers.Apd(options).Fit(view, "big");
        Assert.AreEqual(160, batches);
        // One counting pass, then one pass per epoch; no row is read twice in a pass.
        Assert.AreEqual(3, view.CursorsOpened);
        Assert.AreEqual(3 * 40_000L, view.RowsRead);
        Assert.IsLessThan(20L << 20, peak, $"live managed memory grew by {peak >> 20} MB while training");
    }

    [TestMethod]
    public void AStreamedEpochAllocatesLittleManagedMemoryPerRow()
    {
        // Garbage per row (a managed copy of every batch) grows the GC heap with the rows until a full collection, so
        // the peak memory of a streamed Fit would grow with the task. Batches of 500 rows × 784 features = 1.6 MB.
        var view = new GeneratedDataView(40_000, 784);
        var options = new ApdTrainer.Options
        {
            HiddenLayerSizes = new[] { 8 }, NumberOfEpochs = 2, BatchSize = 500, Seed = 1,
            DataLoading = TrainingDataLoading.Streaming, ShufflePoolSize = 256,
        };
        long start = 0, end = 0;
        int batches = 0;
        options.Progress = new SyncProgress<ApdTrainingProgress>(_ =>
        {
            if (++batches == 20) start = GC.GetAllocatedBytesForCurrentThread();
            end = GC.GetAllocatedBytesForCurrentThread();
        });
        var ml = new MLContext(seed: 1);
        using var model = ml.MulticlassClassification.Trainers.Apd(options).Fit(view, "big");
        Assert.AreEqual(160, batches);
        double perBatch = (end - start) / 140.0, batchBytes = 500 * 784 * sizeof(float);
        Assert.IsLessThan(batchBytes / 20, perBatch, $"{perBatch / 1024:F0} KB allocated per batch of {batchBytes / 1024:F0} KB of features");
    }

    [TestMethod]
    public void LoadingATaskIntoMemoryMakesNoManagedCopyOfItsFeatures()
    {
        // A managed task-sized array would outlive Fit as garbage on the large-object heap until a full collection, one
        // per task learned, so a process fitting task after task would grow by a task per Fit. 40,000 rows × 784
        // features = 125 MB of floats; the rows themselves are generated without allocating.
        var view = new GeneratedDataView(40_000, 784);
        var options = new ApdTrainer.Options
        {
            HiddenLayerSizes = new[] { 8 }, NumberOfEpochs = 1, BatchSize = 500, Seed = 1,
            DataLoading = TrainingDataLoading.InMemory,
        };
        var ml = new MLContext(seed: 1);
        long before = GC.GetTotalAllocatedBytes(precise: true);
        using var model = ml.MulticlassClassification.Trainers.Apd(options).Fit(view, "big");
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        double featureBytes = 40_000 * 784 * sizeof(float);
        Assert.AreEqual(2, view.CursorsOpened, "the first pass and one load into memory");
        Assert.IsLessThan(featureBytes / 10, allocated, $"{allocated >> 20} MB allocated for {featureBytes / (1 << 20):F0} MB of features");
    }

    [TestMethod]
    public void ACursorThatFailsHalfWayThroughAnEpochStopsFitAndLosesNothing()
    {
        var ml = new MLContext(seed: 1);
        var options = ReliabilityData.Options();
        options.DataLoading = TrainingDataLoading.Streaming;
        options.ShufflePoolSize = 50;
        var trainer = ml.MulticlassClassification.Trainers.Apd(options);
        using var first = trainer.Fit(new GeneratedDataView(200, TinyData.Size), "t0");
        var probe = new GeneratedDataView(30, TinyData.Size);
        var before = ReliabilityData.Scores(first.Transform(probe));

        foreach (int cursor in new[] { 1, 2 }) // the counting pass, then epoch 1
        {
            var view = new GeneratedDataView(400, TinyData.Size) { FailAt = (cursor, 250) };
            var e = Assert.ThrowsExactly<InvalidOperationException>(() => trainer.Fit(view, "t1"));
            Assert.IsInstanceOfType<IOException>(e.InnerException);
            StringAssert.Contains(e.Message, "row 250");
            StringAssert.Contains(e.Message, cursor == 1 ? "first pass" : "epoch 1 of task 't1'");
            Assert.AreSame(first, trainer.LastModel);
            ReliabilityData.AssertSameScores(before, ReliabilityData.Scores(first.Transform(probe)));
        }
        using var next = trainer.Fit(new GeneratedDataView(400, TinyData.Size), "t1");
        CollectionAssert.AreEqual(new[] { "t0", "t1" }, next.Tasks.ToArray());
    }

    [TestMethod]
    public void AFailureWhileLoadingIntoMemoryIsReportedTheSameWay()
    {
        var ml = new MLContext(seed: 1);
        var view = new GeneratedDataView(400, TinyData.Size) { FailAt = (2, 10) };
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(view, "t"));
        Assert.IsInstanceOfType<IOException>(e.InnerException);
        StringAssert.Contains(e.Message, "loading task 't' into memory");
    }

    [TestMethod]
    public void DataThatChangeBetweenPassesStopFit()
    {
        var ml = new MLContext(seed: 1);
        foreach (var loading in new[] { TrainingDataLoading.InMemory, TrainingDataLoading.Streaming })
        foreach (int pool in new[] { 10, 1000 })
        {
            var options = ReliabilityData.Options();
            options.DataLoading = loading;
            options.ShufflePoolSize = pool;
            var view = new GeneratedDataView(100, TinyData.Size) { ExtraRowsAfterFirstCursor = 5 };
            var e = Assert.ThrowsExactly<InvalidOperationException>(() => ml.MulticlassClassification.Trainers.Apd(options).Fit(view, "t"));
            StringAssert.Contains(e.Message, "changed during Fit");
        }
    }

    [TestMethod]
    public void CancellationInTheMiddleOfAStreamedEpochKeepsTheEarlierModel()
    {
        var ml = new MLContext(seed: 1);
        var options = ReliabilityData.Options();
        options.DataLoading = TrainingDataLoading.Streaming;
        options.ShufflePoolSize = 3000;
        var trainer = ml.MulticlassClassification.Trainers.Apd(options);
        using var first = trainer.Fit(new GeneratedDataView(200, TinyData.Size), "t0");

        // Cancelled while the epoch's pool is being filled (row 2,500 of 5,000), before any batch of the epoch.
        using var cts = new CancellationTokenSource();
        var view = new GeneratedDataView(5000, TinyData.Size) { OnRow = (cursor, row) => { if (cursor == 2 && row == 2500) cts.Cancel(); } };
        int batches = 0;
        Assert.ThrowsExactly<OperationCanceledException>(() => trainer.Fit(view, "t1", cts.Token));
        Assert.IsLessThan(3200L, view.RowsRead - 5000, "stopped within ~1,024 rows of the cancellation");
        Assert.AreSame(first, trainer.LastModel);

        // Cancelled by MLContext.CancelExecution after a few batches of the second epoch.
        var cancelling = new MLContext(seed: 1);
        options.Progress = new SyncProgress<ApdTrainingProgress>(p => { batches++; if (p.Epoch == 2 && p.Batch == 3) MLNetInternal.CancelExecution(cancelling); });
        options.NumberOfEpochs = 2;
        var other = cancelling.MulticlassClassification.Trainers.Apd(options);
        Assert.ThrowsExactly<OperationCanceledException>(() => other.Fit(new GeneratedDataView(5000, TinyData.Size), "t1", first));
        Assert.AreEqual(250 + 3, batches);
        Assert.IsNull(other.LastModel);
        CollectionAssert.AreEqual(new[] { "t0" }, first.Tasks.ToArray());
    }

    [TestMethod]
    public void NonFiniteRowsInTheStreamAreSkippedAndCountedOnce()
    {
        var ml = new MLContext(seed: 1);
        var warnings = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == Runtime.ChannelMessageKind.Warning) lock (warnings) warnings.Add(e.Message); };
        var options = ReliabilityData.Options();
        options.DataLoading = TrainingDataLoading.Streaming;
        options.ShufflePoolSize = 64;
        options.NumberOfEpochs = 2;
        options.BatchSize = 10;
        int lastBatchCount = 0;
        options.Progress = new SyncProgress<ApdTrainingProgress>(p => lastBatchCount = p.NumberOfBatches);
        // 1,000 rows: NaN features in rows 0, 7, 14, … (143), infinite labels in rows 0, 11, 22, … (91); 13 rows are both.
        var view = new GeneratedDataView(1000, TinyData.Size) { NaNFeatureEvery = 7, InfiniteLabelEvery = 11 };
        using var model = ml.MulticlassClassification.Trainers.Apd(options).Fit(view, "t");
        int usable = 1000 - 91 - (143 - 13);
        Assert.AreEqual((usable + 9) / 10, lastBatchCount);
        Assert.AreEqual(1, warnings.Count(w => w.Contains("Skipped 91 rows") && w.Contains("label column 'Label'")), string.Join("\n", warnings));
        Assert.AreEqual(1, warnings.Count(w => w.Contains($"Skipped {143 - 13} rows") && w.Contains("feature column 'Features'")), string.Join("\n", warnings));
    }

    [TestMethod]
    public void StreamingOptionsAreValidatedNamingTheOption()
    {
        var ml = new MLContext(seed: 1);
        Assert.AreEqual("ShufflePoolSize", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.MulticlassClassification.Trainers.Apd(new ApdTrainer.Options { ShufflePoolSize = 0 })).ParamName);
        Assert.AreEqual("InMemoryLimitMegabytes", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.MulticlassClassification.Trainers.Apd(new ApdTrainer.Options { InMemoryLimitMegabytes = -1 })).ParamName);
        Assert.AreEqual("DataLoading", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.MulticlassClassification.Trainers.Apd(new ApdTrainer.Options { DataLoading = (TrainingDataLoading)7 })).ParamName);
    }
}
