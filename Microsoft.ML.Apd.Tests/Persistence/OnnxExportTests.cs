using Microsoft.ML.Apd.Tests.MLNet;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Microsoft.ML.Apd.Tests.Persistence;

/// <summary>
/// <c>mlContext.Model.ConvertToOnnx</c> on APD models: ONNX Runtime's outputs equal <c>Transform</c>'s (Score within
/// 1e-5, PredictedLabel identical on every row), for fully-connected and convolutional networks, one task and ten,
/// a <c>ForTask</c> view and routing by task id, alone and after a normalizer; ML.NET's <c>ApplyOnnxModel</c> agrees.
/// </summary>
[TestClass]
public sealed class OnnxExportTests
{
    private const float Tolerance = 1e-5f;
    private static MLContext _ml = null!;
    private static List<TinyData.TextRow> _tenTaskRows = null!;
    private static IDataView _tenTaskData = null!;
    private static ApdTransformer _tenTasks = null!;

    [ClassInitialize]
    public static void Train(TestContext _)
    {
        _ml = new MLContext(seed: 1);
        // Odd tasks have a third class, so a routed Score is padded for the others.
        _tenTaskRows = Enumerable.Range(0, 10).SelectMany(t => TinyData.Rows(t, "a" + t % 3, "b", n: 60)
            .Select(r => t % 2 == 1 && r.Features[(t + 1) % TinyData.Size] > 0.4f ? new TinyData.TextRow { Features = r.Features, Label = "c", TaskId = r.TaskId } : r)).ToList();
        _tenTaskData = _ml.Data.LoadFromEnumerable(_tenTaskRows);
        // A wide consolidation threshold, so the tasks' τ share some elements and σ̃ is not empty on tiny data.
        var options = TinyData.FastOptions();
        options.ConsolidationThreshold = 0.5;
        _tenTasks = _ml.MulticlassClassification.Trainers.Apd(options).Fit(_tenTaskData);
    }

    [ClassCleanup]
    public static void Release() => _tenTasks?.Dispose();

    [TestMethod]
    public void OneTaskFullyConnectedModelScoresTheSameInOnnxRuntime()
    {
        // Without a task id column: a one-task model predicts its task for every row (fixed routing).
        var data = _ml.Data.LoadFromEnumerable(TinyData.Rows(0, "no", "yes").Select(r => new LabeledRow { Features = r.Features, Label = r.Label }).ToList());
        using var model = _ml.MulticlassClassification.Trainers.Apd(TinyData.FastOptions()).Fit(data);
        byte[] onnx = Export(model, data);
        AssertSameAsTransform(model.Transform(data), Score(onnx, data));
    }

    [TestMethod]
    public void EveryTaskOfATenTaskModelExportsAsAForTaskView()
    {
        // The model holds every part θ_t is composed of: sparse τ_t and, after consolidation, locally-shared σ̃_g.
        var layers = _tenTasks.Network.Layers;
        Assert.IsTrue(layers.Any(l => l.Slots.Values.Any(s => s.Adaptive.NonZeros > 0)), "τ");
        Assert.IsTrue(layers.Any(l => l.LocallyShared.Values.Any(s => s.NonZeros > 0)), "σ̃");
        foreach (var task in _tenTasks.Tasks)
        {
            using var view = _tenTasks.ForTask(task);
            var rows = Rows(task);
            var onnx = Score(Export(view, rows), rows);
            AssertSameAsTransform(view.Transform(rows), onnx);
            // The label, re-exposed as a key of the task's classes, as Transform does.
            CollectionAssert.AreEqual(TinyData.Column<uint>(view.Transform(rows), "Label"), onnx["Label"].Cast<uint>().ToList());
        }
    }

    [TestMethod]
    public void TenTaskModelRoutesEachRowByItsTaskId()
    {
        // Rows of every task interleaved; tasks have 2 or 3 classes, so Score is [N, 3] with 0 past a task's classes.
        var shuffled = _ml.Data.ShuffleRows(_tenTaskData, seed: 3);
        var onnx = Score(Export(_tenTasks, shuffled), shuffled);
        CollectionAssert.AreEqual(new[] { 2, 3 }, _tenTasks.Tasks.Select(t => _tenTasks.GetClassNames(t).Count).Distinct().Order().ToArray());
        Assert.AreEqual(3, ((float[])onnx["Score"][0]).Length);
        AssertSameAsTransform(_tenTasks.Transform(shuffled), onnx, padded: true);
        CollectionAssert.AreEqual(TinyData.Column<ReadOnlyMemory<char>>(shuffled, "TaskId").Select(t => t.ToString()).ToList(),
            onnx["PredictedTask"].Cast<string>().ToList());
        Assert.IsTrue(onnx["TaskConfidence"].Cast<float>().All(c => c == 1));
    }

    [TestMethod]
    public void SparseValuesExportAsFloat16BitsWhenExactAndAsFloat32Otherwise()
    {
        // Half-precision storage (the default) keeps τ exactly float16, stored in the graph as 16-bit patterns; without
        // it the values are float32.
        var data = _ml.Data.LoadFromEnumerable(_tenTaskRows.Where(r => r.TaskId is "t0" or "t1").ToList());
        foreach (bool half in new[] { true, false })
        {
            var options = TinyData.FastOptions();
            options.HalfPrecisionStorage = half;
            options.TrainFirstTaskAdaptive = true;
            using var model = _ml.MulticlassClassification.Trainers.Apd(options).Fit(data);
            var values = model.Network.Layers.SelectMany(l => l.Slots.Values).SelectMany(s => s.Adaptive.Values.data<float>().ToArray()).ToList();
            Assert.IsTrue(values.Count > 0);
            Assert.AreEqual(half, values.All(v => (float)(Half)v == v), $"half {half}");
            AssertSameAsTransform(model.Transform(data), Score(Export(model, data), data), padded: true);
        }
    }

    /// <summary>Tasks frozen out of the retroactive window use their cohort's σ_c and σ̃: each is one more initializer.</summary>
    [TestMethod]
    public void FrozenCohortsExportWithTheirOwnSharedWeights()
    {
        var data = _ml.Data.LoadFromEnumerable(_tenTaskRows.Where(r => r.TaskId is "t0" or "t1" or "t2" or "t3" or "t4").ToList());
        var options = TinyData.FastOptions();
        options.ConsolidationThreshold = 0.5;
        options.ConsolidationInterval = 2;
        options.InitialClusterCount = 1;    // the two tasks of a window in one cluster: σ̃ for the cohort to keep
        options.RetroactiveWindow = 2;
        using var model = _ml.MulticlassClassification.Trainers.Apd(options).Fit(data);
        var layers = model.Network.Layers;
        Assert.IsTrue(layers.All(l => l.Frozen.Count == 2), "t0, t1 and t2, t3 frozen");
        Assert.IsTrue(layers.Any(l => l.Frozen.Values.Any(c => c.LocallyShared.Count > 0)), "a cohort's σ̃");
        AssertSameAsTransform(model.Transform(data), Score(Export(model, data), data), padded: true);
    }

    /// <summary>A task's low-rank part U_t V_tᵀ is in the graph as the product of its two factors.</summary>
    [TestMethod]
    public void LowRankPartsExportAsTheProductOfTheirFactors()
    {
        var data = _ml.Data.LoadFromEnumerable(_tenTaskRows.Where(r => r.TaskId is "t0" or "t1" or "t2").ToList());
        var options = TinyData.FastOptions();
        options.LowRankAdaptiveRank = 3;
        using var model = _ml.MulticlassClassification.Trainers.Apd(options).Fit(data);
        Assert.IsNotNull(model.Network.Layers[0].Slots["t2"].LowRank);
        AssertSameAsTransform(model.Transform(data), Score(Export(model, data), data), padded: true);

        // On a convolution layer the product is reshaped to the kernel.
        var images = _ml.Data.LoadFromEnumerable(Enumerable.Range(0, 3).SelectMany(t => ImageRows(t, n: 40)).ToList());
        var conv = ConvOptions([4]);
        conv.LowRankAdaptiveRank = 2;
        using var convModel = _ml.MulticlassClassification.Trainers.Apd(conv).Fit(images);
        Assert.IsNotNull(convModel.Network.Layers[0].Slots["t2"].LowRank);
        AssertSameAsTransform(convModel.Transform(images), Score(Export(convModel, images), images), padded: true);
    }

    [TestMethod]
    public void UnscorableRowsGetNaNScoresAndTheMissingLabelAsInTransform()
    {
        var rows = TinyData.Rows(0, "a0", "b", n: 6).ToList();
        rows[1].Features[2] = float.NaN;
        rows[3].Features[0] = float.PositiveInfinity;
        rows[4].Features = rows[4].Features.Select(v => v * 1e38f).ToArray();
        var data = _ml.Data.LoadFromEnumerable(rows);
        using var view = _tenTasks.ForTask("t0");
        foreach (var model in new[] { _tenTasks, view })
        {
            var onnx = Score(Export(model, data), data);
            AssertSameAsTransform(model.Transform(data), onnx, padded: true);
            Assert.IsTrue(((float[])onnx["Score"][1]).All(float.IsNaN));
            Assert.AreEqual("", onnx["PredictedLabel"][1]);
        }
    }

    [TestMethod]
    public void ConvolutionalModelsExportForOneTaskAndRoutedForTen()
    {
        // 4×4 images, one conv block (2 channels, 3×3) → 2×1×1, then a hidden layer.
        var rows = Enumerable.Range(0, 10).SelectMany(t => ImageRows(t, n: 40)).ToList();
        var data = _ml.Data.LoadFromEnumerable(rows);
        var options = ConvOptions([4]);
        using (var tenTasks = _ml.MulticlassClassification.Trainers.Apd(options).Fit(data))
        {
            AssertSameAsTransform(tenTasks.Transform(data), Score(Export(tenTasks, data), data), padded: true);
            using var view = tenTasks.ForTask("t7");
            AssertSameAsTransform(view.Transform(data), Score(Export(view, data), data));
        }
        var one = _ml.Data.LoadFromEnumerable(rows.Where(r => r.TaskId == "t0").ToList());
        using var oneTask = _ml.MulticlassClassification.Trainers.Apd(ConvOptions([3])).Fit(one);
        AssertSameAsTransform(oneTask.Transform(one), Score(Export(oneTask, one), one));
    }

    [TestMethod]
    public void PipelineWithNormalizerAndKeyLabelsExportsInOneCall()
    {
        // As ML.NET users write it: normalize, map the label to a key, train; the whole chain is one ONNX graph.
        var rows = Enumerable.Range(0, 3).SelectMany(t => TinyData.Rows(t, "x", "y", n: 60))
            .Select(r => new TinyData.TextRow { Features = r.Features.Select(v => v * 50 + 7).ToArray(), Label = r.Label, TaskId = r.TaskId }).ToList();
        var data = _ml.Data.LoadFromEnumerable(rows);
        var pipeline = _ml.Transforms.NormalizeMinMax("Features")
            .Append(_ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(_ml.MulticlassClassification.Trainers.Apd(TinyData.FastOptions()));
        var chain = pipeline.Fit(data);
        using var apd = chain.LastTransformer;
        var onnx = Score(Export(chain, data), data);
        AssertSameAsTransform(chain.Transform(data), onnx, padded: true, keyLabels: true);

        // A ForTask view in the same chain re-exposes the (key) label as a key of the task's classes.
        using var view = apd.ForTask("t1");
        var viewChain = new TransformerChain<ITransformer>([.. chain.Take(2), view]);
        var viewOnnx = Score(Export(viewChain, data), data);
        AssertSameAsTransform(viewChain.Transform(data), viewOnnx, keyLabels: true);
        CollectionAssert.AreEqual(TinyData.Column<uint>(viewChain.Transform(data), "Label"), viewOnnx["Label"].Cast<uint>().ToList());
    }

    [TestMethod]
    public void ApplyOnnxModelGivesWhatTransformGives()
    {
        string path = Path.Combine(Path.GetTempPath(), $"apd-onnx-{Guid.NewGuid():N}.onnx");
        try
        {
            File.WriteAllBytes(path, Export(_tenTasks, _tenTaskData));
            using var onnx = _ml.Transforms.ApplyOnnxModel(path).Fit(_tenTaskData);
            var scored = onnx.Transform(_tenTaskData);
            var expected = _tenTasks.Transform(_tenTaskData);
            var actual = TinyData.Scores(scored);
            var scores = TinyData.Scores(expected);
            for (int r = 0; r < scores.Count; r++)
                for (int c = 0; c < actual[r].Length; c++)
                    Assert.AreEqual(c < scores[r].Length ? scores[r][c] : 0f, actual[r][c], Tolerance, $"row {r}, class {c}");
            // ApplyOnnxModel reads the graph's [N, 1] PredictedLabel as a vector of one.
            var predicted = Read<VBuffer<ReadOnlyMemory<char>>, string>(scored, "PredictedLabel", v => v.GetItemOrDefault(0).ToString());
            CollectionAssert.AreEqual(Texts(expected, "PredictedLabel"), predicted);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void AForgottenTaskIsAbsentFromTheExport()
    {
        using var forgotten = _tenTasks.Forget("t3");
        var onnx = Score(Export(forgotten, _tenTaskData), _tenTaskData);
        var ids = Texts(_tenTaskData, "TaskId");
        var others = _ml.Data.LoadFromEnumerable(_tenTaskRows.Where(r => r.TaskId != "t3").ToList());
        var expected = TinyData.Scores(forgotten.Transform(others));
        var labels = Texts(forgotten.Transform(others), "PredictedLabel");
        for (int r = 0, kept = 0; r < ids.Count; r++)
        {
            var score = (float[])onnx["Score"][r];
            if (ids[r] == "t3")
            {
                // Not a task of the graph: no scores, the missing label, no confidence.
                Assert.IsTrue(score.All(float.IsNaN));
                Assert.AreEqual("", onnx["PredictedLabel"][r]);
                Assert.IsTrue(float.IsNaN((float)onnx["TaskConfidence"][r]));
                continue;
            }
            for (int c = 0; c < expected[kept].Length; c++) Assert.AreEqual(expected[kept][c], score[c], Tolerance);
            Assert.AreEqual(labels[kept++], onnx["PredictedLabel"][r]);
        }
    }

    [TestMethod]
    public void ALoadedModelExportsTheSameGraphAsTheModelInMemory()
    {
        using var saved = new MemoryStream();
        _ml.Model.Save(_tenTasks, _tenTaskData.Schema, saved);
        saved.Position = 0;
        var loaded = _ml.Model.Load(saved, out _);
        try
        {
            CollectionAssert.AreEqual(Export(_tenTasks, _tenTaskData), Export(loaded, _tenTaskData));
        }
        finally
        {
            (loaded as IDisposable)?.Dispose();
        }
    }

    [TestMethod]
    public void InferredRoutingIsAClearErrorNotAnIncompleteGraph()
    {
        var noTaskId = _ml.Data.LoadFromEnumerable(_tenTaskRows.Select(r => new LabeledRow { Features = r.Features, Label = r.Label }).ToList());
        var e = Assert.ThrowsExactly<NotSupportedException>(() => Export(_tenTasks, noTaskId));
        StringAssert.Contains(e.Message, "no task id column 'TaskId'");
        StringAssert.Contains(e.Message, "ForTask");
    }

    private static IDataView Rows(string task) => _ml.Data.LoadFromEnumerable(_tenTaskRows.Where(r => r.TaskId == task).ToList());

    private static ApdTrainer.Options ConvOptions(int[] hidden)
    {
        var options = TinyData.FastOptions();
        options.ConvolutionLayers = [2];
        options.ConvolutionKernelSize = 3;
        options.ImageShape = (1, 4, 4);
        options.HiddenLayerSizes = hidden;
        return options;
    }

    /// <summary>Task <paramref name="task"/>: 4×4 images, label by the sign of pixel <paramref name="task"/>.</summary>
    private static IEnumerable<ImageRow> ImageRows(int task, int n)
    {
        var random = new Random(task);
        for (int i = 0; i < n; i++)
        {
            var pixels = Enumerable.Range(0, 16).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            yield return new ImageRow { Features = pixels, Label = pixels[task] > 0 ? "on" : "off", TaskId = "t" + task };
        }
    }

    private sealed class ImageRow
    {
        [VectorType(16)] public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
        public string TaskId { get; set; } = "";
    }

    private sealed class LabeledRow
    {
        [VectorType(TinyData.Size)] public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    // ── helpers ────────────────────────────────────────────────────────────────────────────────────────────────

    private static byte[] Export(ITransformer model, IDataView data)
    {
        using var stream = new MemoryStream();
        _ml.Model.ConvertToOnnx(model, data, stream);
        return stream.ToArray();
    }

    /// <summary>Every output of the ONNX model (by column name), row by row, fed every column of <paramref name="data"/>.</summary>
    private static Dictionary<string, List<object>> Score(byte[] onnx, IDataView data)
    {
        using var session = new InferenceSession(onnx);
        var inputs = session.InputMetadata.Select(input => Input(input.Key, input.Value, data)).ToList();
        using var results = session.Run(inputs);
        var outputs = new Dictionary<string, List<object>>();
        foreach (var result in results)
        {
            string name = result.Name[..result.Name.LastIndexOf('.')]; // ML.NET names outputs "Column.output"
            outputs[name] = result.Value switch
            {
                Tensor<float> t when t.Dimensions.Length == 2 && t.Dimensions[1] > 1 =>
                    Enumerable.Range(0, t.Dimensions[0]).Select(r => (object)Enumerable.Range(0, t.Dimensions[1]).Select(c => t[r, c]).ToArray()).ToList(),
                Tensor<float> t => t.ToArray().Cast<object>().ToList(),
                Tensor<string> t => t.ToArray().Cast<object>().ToList(),
                Tensor<uint> t => t.ToArray().Cast<object>().ToList(),
                Tensor<bool> t => t.ToArray().Cast<object>().ToList(),
                Tensor<long> t => t.ToArray().Cast<object>().ToList(),
                _ => new List<object>(),
            };
        }
        return outputs;
    }

    private static NamedOnnxValue Input(string name, NodeMetadata metadata, IDataView data)
    {
        var column = data.Schema[name];
        if (column.Type is VectorDataViewType vector)
        {
            var rows = Vectors(data, name);
            return NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(rows.SelectMany(r => r).ToArray(), [rows.Count, vector.Size]));
        }
        if (column.Type is TextDataViewType)
        {
            var rows = TinyData.Column<ReadOnlyMemory<char>>(data, name).Select(v => v.ToString()).ToArray();
            return NamedOnnxValue.CreateFromTensor(name, new DenseTensor<string>(rows, [rows.Length, 1]));
        }
        throw new NotSupportedException($"Test helper: column '{name}' of type {column.Type} ({metadata.ElementType}).");
    }

    /// <summary>Every row's vector, copied as it is read.</summary>
    private static List<float[]> Vectors(IDataView data, string name) =>
        Read<VBuffer<float>, float[]>(data, name, v => v.DenseValues().ToArray());

    /// <summary>Every row's value of a column, converted as it is read (ML.NET reuses vector buffers from row to row).</summary>
    private static List<TResult> Read<TValue, TResult>(IDataView data, string name, Func<TValue, TResult> convert)
    {
        var column = data.Schema[name];
        var rows = new List<TResult>();
        using var cursor = data.GetRowCursor([column]);
        var getter = cursor.GetGetter<TValue>(column);
        TValue value = default!;
        while (cursor.MoveNext())
        {
            getter(ref value);
            rows.Add(convert(value));
        }
        return rows;
    }

    /// <summary>Score within 1e-5 and PredictedLabel identical on every row; with <paramref name="padded"/>, ONNX's Score
    /// is wider than a task's and holds 0 past its classes.</summary>
    private static void AssertSameAsTransform(IDataView transformed, Dictionary<string, List<object>> onnx, bool padded = false, bool keyLabels = false)
    {
        var expected = TinyData.Scores(transformed);
        var actual = onnx["Score"].Select(s => s as float[] ?? [(float)s]).ToList();
        Assert.AreEqual(expected.Count, actual.Count);
        for (int r = 0; r < expected.Count; r++)
        {
            if (!padded) Assert.AreEqual(expected[r].Length, actual[r].Length);
            for (int c = 0; c < actual[r].Length; c++)
                Assert.AreEqual(c < expected[r].Length ? expected[r][c] : float.IsNaN(expected[r][0]) ? float.NaN : 0f, actual[r][c], Tolerance, $"row {r}, class {c}");
        }
        if (keyLabels)
            CollectionAssert.AreEqual(TinyData.Column<uint>(transformed, "PredictedLabel"), onnx["PredictedLabel"].Cast<uint>().ToList());
        else
            CollectionAssert.AreEqual(Texts(transformed, "PredictedLabel"), onnx["PredictedLabel"].Cast<string>().ToList());
    }

    private static List<string> Texts(IDataView data, string column) =>
        TinyData.Column<ReadOnlyMemory<char>>(data, column).Select(v => v.ToString()).ToList();
}
