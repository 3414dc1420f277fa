using Microsoft.ML;
using Microsoft.ML.Apd.Persistence;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd.Tests.MLNet;

/// <summary>The trainer/transformer surface on tiny synthetic tasks (fast; no accuracy claims beyond "learns").</summary>
[TestClass]
public sealed class SurfaceTests
{
    private static MLContext _ml = null!;
    private static ApdTransformer _model = null!; // tasks t0 (a/b), t1 (c/d)
    private static IDataView _mixed = null!;

    [ClassInitialize]
    public static void Train(TestContext _)
    {
        _ml = new MLContext(seed: 1);
        var trainer = _ml.MulticlassClassification.Trainers.Apd(TinyData.FastOptions());
        _mixed = _ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b").Concat(TinyData.Rows(1, "c", "d")).ToList());
        _model = trainer.Fit(_mixed);
    }

    [ClassCleanup]
    public static void Cleanup() => _model?.Dispose();

    [TestMethod]
    public void TasksAreTrainedInOrderOfFirstAppearanceAndLearn()
    {
        CollectionAssert.AreEqual(new[] { "t0", "t1" }, _model.Tasks.ToArray());
        CollectionAssert.AreEqual(new[] { "a", "b" }, _model.GetClassNames("t0").ToArray());
        var output = _model.Transform(_mixed);
        var predicted = TinyData.Column<ReadOnlyMemory<char>>(output, "PredictedLabel").Select(v => v.ToString()).ToList();
        var labels = TinyData.Column<ReadOnlyMemory<char>>(output, "Label").Select(v => v.ToString()).ToList();
        double accuracy = predicted.Zip(labels).Count(p => p.First == p.Second) / (double)labels.Count;
        Assert.IsTrue(accuracy >= 0.85, $"accuracy {accuracy}");
        Assert.IsTrue(predicted.Take(120).All(p => p is "a" or "b") && predicted.Skip(120).All(p => p is "c" or "d"));
        Assert.AreEqual(0, ((VectorDataViewType)output.Schema["Score"].Type).Size); // variable size on mixed input
    }

    [TestMethod]
    public void StatisticsPrintCapacityAsMultipleOfOneNetwork()
    {
        var stats = _model.GetStatistics();
        string expected = stats.Capacity.ToString("F2", System.Globalization.CultureInfo.InvariantCulture) + "×";
        StringAssert.StartsWith(stats.ToString(), $"2 tasks, capacity {expected} (");
    }

    [TestMethod]
    public void ForTaskOutputEvaluatesLikeAnyMulticlassTrainer()
    {
        var data = _ml.Data.LoadFromEnumerable(TinyData.Rows(1, "c", "d", seed: 7).ToList());
        using var view = _model.ForTask("t1");
        var output = view.Transform(data);
        Assert.AreEqual(2, ((VectorDataViewType)output.Schema["Score"].Type).Size);
        Assert.IsInstanceOfType<KeyDataViewType>(output.Schema["Label"].Type);
        var metrics = _ml.MulticlassClassification.Evaluate(output);
        Assert.IsTrue(metrics.MacroAccuracy > 0.8, $"{metrics.MacroAccuracy}");
        VBuffer<ReadOnlyMemory<char>> slots = default;
        output.Schema["Score"].GetSlotNames(ref slots);
        CollectionAssert.AreEqual(new[] { "c", "d" }, slots.DenseValues().Select(s => s.ToString()).ToArray());
    }

    [TestMethod]
    public void OutputSchemaMatchesTransformAndEstimatorShape()
    {
        var fromMapper = _model.GetOutputSchema(_mixed.Schema);
        var fromTransform = _model.Transform(_mixed).Schema;
        Assert.AreEqual(fromMapper.Count, fromTransform.Count);
        for (int i = 0; i < fromMapper.Count; i++)
        {
            Assert.AreEqual(fromMapper[i].Name, fromTransform[i].Name);
            Assert.AreEqual(fromMapper[i].Type, fromTransform[i].Type);
        }

        // The estimator's SchemaShape agrees with what the trained model produces (mixed and single-task cases).
        foreach (var (data, model) in new[] { (_mixed, _model), (SingleTaskData(out var single), single) })
        {
            var trainer = _ml.MulticlassClassification.Trainers.Apd(TinyData.FastOptions());
            var shape = trainer.GetOutputSchema(MLNetInternal.ShapeOf(data.Schema));
            var actual = model.Transform(data).Schema;
            foreach (var name in new[] { "PredictedLabel", "Score", "Label" })
            {
                var expected = shape.Single(c => c.Name == name);
                var column = actual[name];
                Assert.AreEqual(expected.ItemType.RawType, (column.Type is VectorDataViewType vt ? vt.ItemType : column.Type).RawType, name);
                Assert.AreEqual(expected.IsKey, column.Type is KeyDataViewType, name);
                var kind = column.Type is VectorDataViewType v ? (v.IsKnownSize ? SchemaShape.Column.VectorKind.Vector : SchemaShape.Column.VectorKind.VariableVector) : SchemaShape.Column.VectorKind.Scalar;
                Assert.AreEqual(expected.Kind, kind, name);
                CollectionAssert.AreEquivalent(expected.Annotations.Select(a => a.Name).ToArray(),
                    column.Annotations.Schema.Select(a => a.Name).ToArray(), name);
            }
            if (!ReferenceEquals(model, _model)) model.Dispose();
        }
    }

    private static IDataView SingleTaskData(out ApdTransformer model)
    {
        var rows = TinyData.Rows(0, "a", "b").Select(r => new TinyData.TextRow { Features = r.Features, Label = r.Label }).ToList();
        var data = _ml.Data.LoadFromEnumerable(rows);
        var view = _ml.Transforms.DropColumns("TaskId").Fit(data).Transform(data);
        model = _ml.MulticlassClassification.Trainers.Apd(TinyData.FastOptions()).Fit(view);
        CollectionAssert.AreEqual(new[] { "default" }, model.Tasks.ToArray());
        return view;
    }

    [TestMethod]
    public void SchemaIsCheckedUpFrontNamingTheColumn()
    {
        var trainer = _ml.MulticlassClassification.Trainers.Apd(new ApdTrainer.Options { FeatureColumnName = "Missing" });
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => trainer.Fit(_mixed));
        StringAssert.Contains(e.Message, "'Missing'");

        var asDouble = _ml.Transforms.Conversion.ConvertType("Features", outputKind: DataKind.Double).Fit(_mixed).Transform(_mixed);
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ml.MulticlassClassification.Trainers.Apd().Fit(asDouble));
        StringAssert.Contains(e.Message, "feature column 'Features'");
        StringAssert.Contains(e.Message, "Single");

        var taskAsFloat = _ml.Transforms.CopyColumns("TaskId", "Features").Fit(_mixed).Transform(_mixed);
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ml.MulticlassClassification.Trainers.Apd().Fit(taskAsFloat));
        StringAssert.Contains(e.Message, "task id column 'TaskId'");

        var conv = _ml.MulticlassClassification.Trainers.Apd(new ApdTrainer.Options
        { ConvolutionLayers = new[] { 2 }, ConvolutionKernelSize = 3, ImageShape = (1, 4, 4), HiddenLayerSizes = new[] { 4 } });
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => conv.Fit(_mixed));
        StringAssert.Contains(e.Message, "ImageShape");

        // Wrong feature size for a model continued.
        var wide = _ml.Data.LoadFromEnumerable(new[] { new { Features = new float[3], Label = "x" } }.ToList());
        var widened = _ml.Transforms.Concatenate("Features", "Features").Fit(wide).Transform(wide);
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            _ml.MulticlassClassification.Trainers.Apd().Fit(widened, "new", _model));
        StringAssert.Contains(e.Message, "'Features'");
    }

    [TestMethod]
    public void RoutingErrorsNameTheTaskOrColumn()
    {
        var unknown = _ml.Data.LoadFromEnumerable(TinyData.Rows(5, "a", "b", n: 3).ToList());
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => TinyData.Scores(_model.Transform(unknown)));
        StringAssert.Contains(e.Message, "'t5'");
        StringAssert.Contains(e.Message, "'t0', 't1'");

        // Without the task id column a multi-task model infers each row's task (TaskInferenceTests; with
        // Options.RequireTaskId it throws, naming the column); ForTask predicts one task.
        var noTask = _ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b", n: 3).Select(r => new TinyData.FeaturesOnly { Features = r.Features }).ToList());
        Assert.AreEqual(3, TinyData.Column<ReadOnlyMemory<char>>(_model.Transform(noTask), "PredictedTask").Count);
        Assert.AreEqual(3, TinyData.Scores(_model.ForTask("t0").Transform(noTask)).Count);
    }

    [TestMethod]
    public void ExistingTaskIsRejectedAndUnknownTaskNamed()
    {
        var trainer = _ml.MulticlassClassification.Trainers.Apd(TinyData.FastOptions());
        var data = _ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b", n: 20).ToList());
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => trainer.Fit(data, "t1", _model));
        StringAssert.Contains(e.Message, "'t1'");
        Assert.ThrowsExactly<ArgumentException>(() => _model.ForTask("nope"));
    }

    [TestMethod]
    public void ContinuingDoesNotChangeEarlierModelsAndForgettingKeepsOthers()
    {
        var trainer = _ml.MulticlassClassification.Trainers.Apd(TinyData.FastOptions());
        var before = TinyData.Scores(_model.Transform(_mixed));
        var t2 = _ml.Data.LoadFromEnumerable(TinyData.Rows(2, "e", "f").ToList());
        using var next = trainer.Fit(t2, "t2", _model);
        CollectionAssert.AreEqual(new[] { "t0", "t1", "t2" }, next.Tasks.ToArray());
        AssertSame(before, TinyData.Scores(_model.Transform(_mixed)));

        using var forgot = next.Forget("t0");
        CollectionAssert.AreEqual(new[] { "t1", "t2" }, forgot.Tasks.ToArray());
        var t1 = _ml.Data.LoadFromEnumerable(TinyData.Rows(1, "c", "d", n: 50).ToList());
        AssertSame(TinyData.Scores(next.Transform(t1)), TinyData.Scores(forgot.Transform(t1)));
        Assert.AreEqual(3, next.Tasks.Count); // unchanged
        Assert.IsTrue(next.GetStatistics().StoredParameters > 0);
    }

    [TestMethod]
    public void CancellationStopsTrainingAndKeepsTheLastModel()
    {
        var ml = new MLContext(seed: 1);
        var options = TinyData.FastOptions();
        int reports = 0;
        options.Progress = new SyncProgress(p => { if (++reports == 3) MLNetInternal.CancelExecution(ml); });
        var trainer = ml.MulticlassClassification.Trainers.Apd(options);
        var data = ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b").ToList());
        Assert.Throws<OperationCanceledException>(() => trainer.Fit(data, "x"));
        Assert.AreEqual(3, reports);
        Assert.IsNull(trainer.LastModel);
    }

    [TestMethod]
    public void ProgressAndLogReportEpochs()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains("APD:")) lock (log) log.Add(e.Message); };
        var options = TinyData.FastOptions();
        var progress = new List<ApdTrainingProgress>();
        options.Progress = new SyncProgress(progress.Add);
        options.NumberOfEpochs = 2;
        using var model = ml.MulticlassClassification.Trainers.Apd(options)
            .Fit(ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b", n: 40).ToList()), "x");
        Assert.AreEqual(4, progress.Count); // 2 epochs × 2 batches
        Assert.AreEqual("x", progress[0].Task);
        Assert.AreEqual(2, log.Count(m => m.Contains(": cross-entropy")));
    }

    [TestMethod]
    public void SaveAndLoadPredictIdenticallyAndCorruptionIsRejected()
    {
        string path = Path.Combine(Path.GetTempPath(), $"apd-surface-{Guid.NewGuid():N}.zip");
        try
        {
            _ml.Model.Save(_model, _mixed.Schema, path);
            var loaded = (ApdTransformer)new MLContext().Model.Load(path, out var schema);
            using (loaded)
            {
                CollectionAssert.AreEqual(_model.Tasks.ToArray(), loaded.Tasks.ToArray());
                AssertSame(TinyData.Scores(_model.Transform(_mixed)), TinyData.Scores(loaded.Transform(_mixed)));
                Assert.AreEqual("Features", schema["Features"].Name);
            }

            // Flip one byte inside our entry: loading fails with InvalidDataException (possibly wrapped by ML.NET).
            using (var zip = System.IO.Compression.ZipFile.Open(path, System.IO.Compression.ZipArchiveMode.Update))
            {
                var entry = zip.Entries.Single(e => e.FullName.EndsWith("ApdModel.bin"));
                byte[] bytes;
                using (var s = entry.Open()) { using var m = new MemoryStream(); s.CopyTo(m); bytes = m.ToArray(); }
                bytes[bytes.Length / 2] ^= 0x01;
                entry.Delete();
                using var w = zip.CreateEntry(entry.FullName).Open();
                w.Write(bytes);
            }
            var error = Assert.Throws<Exception>(() => new MLContext().Model.Load(path, out _));
            Assert.IsTrue(Chain(error).Any(x => x is InvalidDataException), error.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }

    internal static IEnumerable<Exception> Chain(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException) yield return x;
    }

    internal static void AssertSame(List<float[]> expected, List<float[]> actual)
    {
        Assert.AreEqual(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            CollectionAssert.AreEqual(expected[i], actual[i], $"row {i}");
    }

    [TestMethod]
    public void PredictionEngineWorks()
    {
        var engine = _ml.Model.CreatePredictionEngine<TinyData.TextRow, TinyData.TextPrediction>(_model);
        var rows = TinyData.Rows(1, "c", "d", n: 20, seed: 3).ToList();
        int correct = rows.Count(r => engine.Predict(r).PredictedLabel == r.Label);
        Assert.IsTrue(correct >= 16, $"{correct}/20");
        Assert.AreEqual(2, engine.Predict(rows[0]).Score.Length);
    }

    internal sealed class SyncProgress : IProgress<ApdTrainingProgress>
    {
        private readonly Action<ApdTrainingProgress> _report;
        public SyncProgress(Action<ApdTrainingProgress> report) => _report = report;
        public void Report(ApdTrainingProgress value) => _report(value);
    }
}
