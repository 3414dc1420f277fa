using System.Diagnostics;
using Microsoft.ML.Apd.Samples;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd.Benchmarks;

/// <summary>
/// Through the public ML.NET API: 50 permuted Fashion-MNIST tasks (stored size after each), then scoring throughput
/// with mixed task ids (10 tasks), single-row PredictionEngine latency, and save/load of the 50-task model.
/// </summary>
internal static class PublicApi
{
    public sealed class Row
    {
        [VectorType(FashionMnist.ImageSize)]
        public float[] Features { get; set; } = [];
        public string TaskId { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
    }

    public static void Run(FashionMnistSet train, FashionMnistSet test, int tasks, int epochs, string outDirectory, TextWriter output)
    {
        var ml = new MLContext(seed: 1);
        var trainer = ml.MulticlassClassification.Trainers.Apd(new ApdTrainer.Options { NumberOfEpochs = epochs });
        output.WriteLine($"## {tasks} permuted Fashion-MNIST tasks through the public API ({train.Count} images per task, {epochs} epochs)");
        output.WriteLine("task | stored parameters | capacity | .zip bytes | bytes per task vs one base network | fit s");
        string csvPath = Path.Combine(outDirectory, "stored-size.csv");
        var csv = new StreamWriter(csvPath);
        csv.WriteLine("task,stored_parameters,capacity,zip_bytes,fit_seconds");
        ApdTransformer? model = null, tenTaskModel = null;
        long previousBytes = 0, baseNetworkBytes = 0;
        for (int t = 0; t < tasks; t++)
        {
            var data = ml.Data.LoadFromEnumerable(Permuted(train, t));
            var watch = Stopwatch.StartNew();
            model = trainer.Fit(data, $"p{t}");
            double fitSeconds = watch.Elapsed.TotalSeconds;
            var stats = model.GetStatistics();
            long bytes = SavedBytes(ml, model, data.Schema);
            // One base network's parameters in float32 (the first task's head included), the unit of "≤ 10 % per task".
            if (t == 0) baseNetworkBytes = stats.BaseNetworkParameters * 4;
            output.WriteLine($"{t + 1,4} | {stats.StoredParameters,17:N0} | {stats.Capacity,8:F3} | {bytes,10:N0} | {100.0 * (bytes - previousBytes) / baseNetworkBytes,6:F1} % | {fitSeconds,5:F1}");
            csv.WriteLine($"{t + 1},{stats.StoredParameters},{stats.Capacity:F4},{bytes},{fitSeconds:F2}");
            previousBytes = bytes;
            if (t == 9) tenTaskModel = model;
        }

        csv.Dispose();
        StoredSizeChart.Write(csvPath, Path.Combine(outDirectory, "stored-size.png"));

        if (tenTaskModel is not null) Scoring(ml, tenTaskModel, test, output);
        SaveLoad(ml, model!, output);
    }

    /// <summary>Task <paramref name="task"/> of permuted Fashion-MNIST (pixel permutation seeded by the task), text labels.</summary>
    internal static IEnumerable<Row> Permuted(FashionMnistSet set, int task, int? limit = null)
    {
        var permutation = Enumerable.Range(0, FashionMnist.ImageSize).ToArray();
        new Random(task).Shuffle(permutation);
        for (int i = 0; i < (limit ?? set.Count); i++)
            yield return new Row
            {
                Features = permutation.Select(p => set.Images[i][p]).ToArray(),
                TaskId = $"p{task}",
                Label = FashionMnist.ClassNames[set.Labels[i]],
            };
    }

    private static long SavedBytes(MLContext ml, ITransformer model, DataViewSchema schema)
    {
        using var stream = new MemoryStream();
        ml.Model.Save(model, schema, stream);
        return stream.Length;
    }

    private static void Scoring(MLContext ml, ApdTransformer model, FashionMnistSet test, TextWriter output)
    {
        // Rows of 10 tasks interleaved, so every block the scorer reads holds every task.
        var rows = Enumerable.Range(0, 10).Select(t => Permuted(test, t).ToList()).ToList();
        var mixed = Enumerable.Range(0, test.Count).SelectMany(i => rows.Select(r => r[i])).ToList();
        var data = ml.Data.LoadFromEnumerable(mixed);
        var scores = new List<double>();
        for (int repeat = 0; repeat < 4; repeat++)
        {
            var watch = Stopwatch.StartNew();
            int count = ml.Data.CreateEnumerable<Prediction>(model.Transform(data), reuseRowObject: true).Count();
            if (repeat > 0) scores.Add(count / watch.Elapsed.TotalSeconds);
        }
        output.WriteLine($"## Scoring, 10-task model, {mixed.Count:N0} rows with mixed task ids: {scores.Order().ElementAt(scores.Count / 2):N0} rows/s (median of 3)");

        // ML.NET's PredictionEngine owns (and disposes) its transformer unless told otherwise.
        using var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(model, new PredictionEngineOptions { OwnsTransformer = false });
        var latencies = new double[2000];
        for (int i = 0; i < 200; i++) engine.Predict(mixed[i]);
        for (int i = 0; i < latencies.Length; i++)
        {
            long start = Stopwatch.GetTimestamp();
            engine.Predict(mixed[i % mixed.Count]);
            latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        output.WriteLine($"## PredictionEngine.Predict, one row: p50 {Measure.Percentile(latencies, 0.5):F3} ms, p99 {Measure.Percentile(latencies, 0.99):F3} ms ({latencies.Length} calls)");
    }

    private static void SaveLoad(MLContext ml, ApdTransformer model, TextWriter output)
    {
        string path = Path.Combine(Path.GetTempPath(), $"apd-benchmark-{Environment.ProcessId}.zip");
        var schema = ml.Data.LoadFromEnumerable(new List<Row>()).Schema;
        var save = Stopwatch.StartNew();
        ml.Model.Save(model, schema, path);
        double saveSeconds = save.Elapsed.TotalSeconds;
        var load = Stopwatch.StartNew();
        using var loaded = (ApdTransformer)new MLContext().Model.Load(path, out _);
        double loadSeconds = load.Elapsed.TotalSeconds;
        output.WriteLine($"## Save/load, {model.Tasks.Count}-task model: .zip {new FileInfo(path).Length:N0} bytes, save {saveSeconds:F2} s, load {loadSeconds:F2} s");
        File.Delete(path);
    }
}
