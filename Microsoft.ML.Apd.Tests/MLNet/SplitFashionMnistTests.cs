using Microsoft.ML;
using Microsoft.ML.Apd.Samples;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd.Tests.MLNet;

/// <summary>
/// End to end on the shipped Fashion-MNIST subset as Split Fashion-MNIST: 5 tasks of 2 classes (0/1, 2/3, …) with text
/// labels, trained once in order through the public API and shared by the tests of this class.
/// </summary>
[TestClass]
public sealed class SplitFashionMnistTests
{
    public sealed class FashionRow
    {
        [VectorType(FashionMnist.ImageSize)] public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
        public string TaskId { get; set; } = "";
    }

    public sealed class FashionPrediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
    }

    private static MLContext _ml = null!;
    private static ApdTrainer _trainer = null!;
    private static readonly List<ApdTransformer> Models = new();
    private static readonly Dictionary<string, IDataView> Test = new();
    private static readonly Dictionary<string, double> JustTrained = new();
    private static readonly Dictionary<string, double> Final = new();
    private static List<FashionRow> _testRows = null!;
    private static (FashionMnistSet Train, FashionMnistSet Test) _data;

    internal static string TaskName(int t) => SplitFashionMnist.TaskName(t);

    /// <summary>Task <paramref name="t"/> of <see cref="SplitFashionMnist"/> as rows with text labels.</summary>
    internal static List<FashionRow> Rows(FashionMnistSet set, int t) => Rows(set, SplitFashionMnist.ClassPairs[t], TaskName(t));

    /// <summary>The images of <paramref name="classes"/> as rows of task <paramref name="task"/> with text labels.</summary>
    internal static List<FashionRow> Rows(FashionMnistSet set, int[] classes, string task) =>
        SplitFashionMnist.Rows(set, classes)
            .Select(i => new FashionRow { Features = set.Images[i], Label = FashionMnist.ClassNames[set.Labels[i]], TaskId = task })
            .ToList();

    internal static ApdTrainer.Options Options() => new()
    {
        HiddenLayerSizes = new[] { 256, 128 },
        NumberOfEpochs = 3,
        BatchSize = 100,
        Seed = 1,
    };

    [ClassInitialize]
    public static void TrainAllTasks(TestContext context)
    {
        _data = FashionMnist.LoadSubset();
        _ml = new MLContext(seed: 1);
        _trainer = _ml.MulticlassClassification.Trainers.Apd(Options());
        _testRows = new List<FashionRow>();
        for (int t = 0; t < SplitFashionMnist.TaskCount; t++)
        {
            string task = TaskName(t);
            var testRows = Rows(_data.Test, t);
            _testRows.AddRange(testRows);
            Test[task] = _ml.Data.LoadFromEnumerable(testRows);
            var model = _trainer.Fit(_ml.Data.LoadFromEnumerable(Rows(_data.Train, t)), task);
            Models.Add(model);
            JustTrained[task] = Accuracy(model, task);
            string after = string.Join(", ", model.Tasks.Select(x => $"{Accuracy(model, x):F3}"));
            context.WriteLine($"after task {t + 1} ({task}): just trained {JustTrained[task]:F3}; all: {after}; {model.GetStatistics()}");
        }
        foreach (var task in Models[^1].Tasks) Final[task] = Accuracy(Models[^1], task);
        context.WriteLine($"average after last task {Final.Values.Average():F4}; capacity {Models[^1].GetStatistics().Capacity:F3}");
    }

    [ClassCleanup]
    public static void Cleanup()
    {
        foreach (var model in Models) model.Dispose();
    }

    private static double Accuracy(ApdTransformer model, string task)
    {
        using var view = model.ForTask(task);
        return _ml.MulticlassClassification.Evaluate(view.Transform(Test[task])).MicroAccuracy;
    }

    [TestMethod]
    public void AverageAccuracyAfterTheLastTaskIsHighAndNoTaskIsForgotten()
    {
        Assert.IsTrue(Final.Values.Average() >= 0.90, $"average {Final.Values.Average():F4}");
        foreach (var (task, accuracy) in Final)
            Assert.IsTrue(JustTrained[task] - accuracy <= 0.05, $"{task}: {JustTrained[task]:F3} → {accuracy:F3}");
    }

    [TestMethod]
    public void EarlierModelsAreUnchangedByLaterTraining()
    {
        Assert.AreEqual(1, Models[0].Tasks.Count);
        Assert.AreEqual(JustTrained[TaskName(0)], Accuracy(Models[0], TaskName(0)));
    }

    public sealed class InferredPrediction
    {
        public string PredictedLabel { get; set; } = "";
        public string PredictedTask { get; set; } = "";
    }

    /// <summary>Rows whose task id is empty go to the task whose training rows they resemble most: the highest
    /// likelihood under a diagonal Gaussian of each task's training features (mean and variance computed here, in
    /// double, from the training rows; variance floor 0.1 × its mean over the features), on real data.</summary>
    [TestMethod]
    public void RowsWithoutTaskIdGoToTheTaskWhoseTrainingInputsTheyResembleMost()
    {
        var model = Models[^1];
        var rows = _ml.Data.LoadFromEnumerable(_testRows.Select(r => new FashionRow { Features = r.Features, Label = r.Label }).ToList());
        var inferred = _ml.Data.CreateEnumerable<InferredPrediction>(model.Transform(rows), reuseRowObject: false).ToList();
        var likelihood = model.Tasks.Select(task =>
        {
            var train = Rows(_data.Train, Enumerable.Range(0, SplitFashionMnist.TaskCount).Single(t => TaskName(t) == task));
            int size = FashionMnist.ImageSize;
            var mean = new double[size];
            var variance = new double[size];
            foreach (var r in train) for (int j = 0; j < size; j++) mean[j] += r.Features[j] / (double)train.Count;
            foreach (var r in train) for (int j = 0; j < size; j++) variance[j] += Math.Pow(r.Features[j] - mean[j], 2) / train.Count;
            double floor = 0.1 * variance.Average();
            return _testRows.Select(r => -0.5 * Enumerable.Range(0, size)
                .Sum(j => Math.Pow(r.Features[j] - mean[j], 2) / (variance[j] + floor) + Math.Log(variance[j] + floor))).ToArray();
        }).ToArray();
        int checkedRows = 0;
        for (int i = 0; i < _testRows.Count; i++)
        {
            var order = Enumerable.Range(0, likelihood.Length).OrderByDescending(t => likelihood[t][i]).ToArray();
            if (likelihood[order[0]][i] - likelihood[order[1]][i] < 1e-2) continue; // a tie to float rounding
            Assert.AreEqual(model.Tasks[order[0]], inferred[i].PredictedTask, $"row {i}");
            checkedRows++;
        }
        Assert.IsTrue(checkedRows > 0.99 * _testRows.Count, $"{checkedRows} rows without a tie");
        double routed = inferred.Zip(_testRows).Count(p => p.First.PredictedTask == p.Second.TaskId) / (double)_testRows.Count;
        double accuracy = inferred.Zip(_testRows).Count(p => p.First.PredictedLabel == p.Second.Label) / (double)_testRows.Count;
        Console.WriteLine($"class-incremental on the subset: {routed:P1} of rows routed to their own task, accuracy {accuracy:P1}");
    }

    [TestMethod]
    public void MixedTaskInputIsRoutedPerRow()
    {
        var model = Models[^1];
        var all = _ml.Data.LoadFromEnumerable(_testRows);
        var predicted = TinyData.Column<ReadOnlyMemory<char>>(model.Transform(all), "PredictedLabel");
        double accuracy = predicted.Zip(_testRows).Count(p => p.First.ToString() == p.Second.Label) / (double)_testRows.Count;
        Assert.AreEqual(Final.Values.Average(), accuracy, 1e-9); // equal-size tasks: the mean of per-task accuracies
    }

    [TestMethod]
    public void SavedModelLoadsInANewContextPredictsBitExactAndContinues()
    {
        var model = Models[^1];
        var all = _ml.Data.LoadFromEnumerable(_testRows);
        string path = Path.Combine(Path.GetTempPath(), $"apd-fashion-{Guid.NewGuid():N}.zip");
        try
        {
            _ml.Model.Save(model, all.Schema, path);
            var ml2 = new MLContext(seed: 2);
            using var loaded = (ApdTransformer)ml2.Model.Load(path, out _);
            SurfaceTests.AssertSame(TinyData.Scores(model.Transform(all)), TinyData.Scores(loaded.Transform(all)));

            // A 6th task after load: T-shirt/top vs Ankle boot. Earlier tasks keep their predictions exactly.
            var trainer = ml2.MulticlassClassification.Trainers.Apd(Options());
            string sixth = "T-shirt/top vs Ankle boot";
            using var next = trainer.Fit(ml2.Data.LoadFromEnumerable(Rows(_data.Train, [0, 9], sixth)), sixth, loaded);
            Assert.AreEqual(6, next.Tasks.Count);
            var sixthTest = ml2.Data.LoadFromEnumerable(Rows(_data.Test, [0, 9], sixth));
            using var sixthView = next.ForTask(sixth);
            double accuracy = ml2.MulticlassClassification.Evaluate(sixthView.Transform(sixthTest)).MicroAccuracy;
            Assert.IsTrue(accuracy >= 0.9, $"6th task accuracy {accuracy:F3}");
            var before = TinyData.Scores(loaded.Transform(all));
            var after = TinyData.Scores(next.Transform(all));
            double worst = before.Zip(after).Max(p => p.First.Zip(p.Second).Max(x => Math.Abs(x.First - x.Second)));
            Assert.IsTrue(worst < 0.05, $"largest change of an earlier task's probability: {worst}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void ForgettingATaskKeepsTheOthersBitExact()
    {
        var model = Models[^1];
        using var forgot = model.Forget(TaskName(0));
        CollectionAssert.DoesNotContain(forgot.Tasks.ToArray(), TaskName(0));
        var others = _ml.Data.LoadFromEnumerable(_testRows.Where(r => r.TaskId != TaskName(0)).ToList());
        SurfaceTests.AssertSame(TinyData.Scores(model.Transform(others)), TinyData.Scores(forgot.Transform(others)));
        Assert.IsTrue(forgot.GetStatistics().StoredParameters < model.GetStatistics().StoredParameters);
        Assert.AreEqual(5, model.Tasks.Count);
    }

    [TestMethod]
    public void PredictionEngineFromALoadedModel()
    {
        var model = Models[^1];
        using var stream = new MemoryStream();
        _ml.Model.Save(model, _ml.Data.LoadFromEnumerable(_testRows).Schema, stream);
        stream.Position = 0;
        var ml2 = new MLContext();
        var loaded = ml2.Model.Load(stream, out _);
        var engine = ml2.Model.CreatePredictionEngine<FashionRow, FashionPrediction>(loaded);
        var sample = _testRows.Where((_, i) => i % 10 == 0).ToList();
        double accuracy = sample.Count(r => engine.Predict(r).PredictedLabel == r.Label) / (double)sample.Count;
        Assert.IsTrue(accuracy >= 0.85, $"{accuracy}");
        Assert.AreEqual(2, engine.Predict(sample[0]).Score.Length);
        ((IDisposable)loaded).Dispose();
    }

    [TestMethod]
    public void PipelineWithOtherTransformsSavesAndLoads()
    {
        var options = Options();
        options.NumberOfEpochs = 1;
        options.FeatureColumnName = "Pixels";
        var pipeline = _ml.Transforms.Concatenate("Pixels", "Features")
            .Append(_ml.MulticlassClassification.Trainers.Apd(options));
        string task = TaskName(4);
        var train = _ml.Data.LoadFromEnumerable(Rows(_data.Train, 4));
        var chain = pipeline.Fit(train);
        var test = Test[task];
        var expected = TinyData.Scores(chain.Transform(test));
        using var stream = new MemoryStream();
        _ml.Model.Save(chain, train.Schema, stream);
        stream.Position = 0;
        var loaded = new MLContext().Model.Load(stream, out _);
        SurfaceTests.AssertSame(expected, TinyData.Scores(loaded.Transform(test)));
        var metrics = _ml.MulticlassClassification.Evaluate(((ApdTransformer)chain.LastTransformer).ForTask(task).Transform(
            _ml.Transforms.Concatenate("Pixels", "Features").Fit(test).Transform(test)));
        Assert.IsTrue(metrics.MicroAccuracy > 0.8, $"{metrics.MicroAccuracy}");
        chain.LastTransformer.Dispose();
    }
}
