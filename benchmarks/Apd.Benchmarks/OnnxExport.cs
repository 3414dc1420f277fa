using System.Diagnostics;
using Microsoft.ML.Apd.Samples;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Microsoft.ML.Apd.Benchmarks;

/// <summary>
/// ONNX export (mlContext.Model.ConvertToOnnx) of permuted Fashion-MNIST models: the .onnx size against the .zip after
/// 10 and 50 tasks, and rows per second of ONNX Runtime against Transform on the same rows (interleaved task ids),
/// timed in alternation so machine load affects both alike.
/// </summary>
internal static class OnnxExport
{
    public static void Run(FashionMnistSet train, FashionMnistSet test, int tasks, int epochs, TextWriter output)
    {
        var ml = new MLContext(seed: 1);
        var trainer = ml.MulticlassClassification.Trainers.Apd(new ApdTrainer.Options { NumberOfEpochs = epochs });
        output.WriteLine($"## ONNX export: {tasks} permuted Fashion-MNIST tasks ({train.Count:N0} images per task, {epochs} epochs)");
        output.WriteLine("tasks | .zip bytes | .onnx bytes (all tasks, routed) | ratio | .onnx of one ForTask view | export s | ORT session s | Transform rows/s | ORT rows/s (batches of 256) | ORT rows/s (one batch) | ORT/Transform");
        for (int t = 0; t < tasks; t++)
        {
            var model = trainer.Fit(ml.Data.LoadFromEnumerable(PublicApi.Permuted(train, t)), $"p{t}"); // continues from the last
            if (t + 1 == 10 || t + 1 == tasks) Measure(ml, model, test, output);
        }
    }

    private static void Measure(MLContext ml, ApdTransformer model, FashionMnistSet test, TextWriter output)
    {
        // Rows of (up to) 10 tasks interleaved, as PublicApi's scoring benchmark.
        var scored = model.Tasks.Take(10).Select(t => PublicApi.Permuted(test, int.Parse(t[1..])).ToList()).ToList();
        var rows = Enumerable.Range(0, test.Count).SelectMany(i => scored.Select(r => r[i])).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);

        long zipBytes;
        using (var zip = new MemoryStream())
        {
            ml.Model.Save(model, data.Schema, zip);
            zipBytes = zip.Length;
        }
        var export = Stopwatch.StartNew();
        byte[] onnx = Export(ml, model, data);
        double exportSeconds = export.Elapsed.TotalSeconds;
        long viewBytes;
        using (var view = model.ForTask(model.Tasks[^1])) viewBytes = Export(ml, view, data).Length;

        var created = Stopwatch.StartNew();
        // As many threads as libtorch gets; no spinning between runs, which would steal the cores from Transform's turns.
        using var options = new SessionOptions { IntraOpNumThreads = Environment.ProcessorCount };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        using var session = new InferenceSession(onnx, options);
        double sessionSeconds = created.Elapsed.TotalSeconds;
        var features = rows.SelectMany(r => r.Features).ToArray();
        var ids = rows.Select(r => r.TaskId).ToArray();
        var labels = rows.Select(r => r.Label).ToArray();

        int Transform() => ml.Data.CreateEnumerable<PublicApi.Prediction>(model.Transform(data), reuseRowObject: true).Count();
        int Ort(int batch)
        {
            int count = 0;
            for (int start = 0; start < rows.Count; start += batch)
            {
                int n = Math.Min(batch, rows.Count - start);
                var inputs = new[]
                {
                    NamedOnnxValue.CreateFromTensor("Features", new DenseTensor<float>(features.AsMemory(start * FashionMnist.ImageSize, n * FashionMnist.ImageSize), [n, FashionMnist.ImageSize])),
                    NamedOnnxValue.CreateFromTensor("TaskId", new DenseTensor<string>(ids.AsMemory(start, n), [n, 1])),
                    NamedOnnxValue.CreateFromTensor("Label", new DenseTensor<string>(labels.AsMemory(start, n), [n, 1])),
                };
                using var results = session.Run(inputs);
                count += results.First(r => r.Name.StartsWith("PredictedLabel.", StringComparison.Ordinal)).AsTensor<string>().Dimensions[0];
            }
            return count;
        }
        var medians = Benchmarks.Measure.InterleavedMedianMilliseconds([() => Transform(), () => Ort(256), () => Ort(rows.Count)], warmup: 1, rounds: 5);
        double Rate(double ms) => rows.Count / (ms / 1000);
        output.WriteLine($"{model.Tasks.Count,5} | {zipBytes,10:N0} | {onnx.Length,31:N0} | {(double)onnx.Length / zipBytes,5:F2} | {viewBytes,26:N0} | {exportSeconds,8:F2} | {sessionSeconds,13:F2} | {Rate(medians[0]),16:N0} | {Rate(medians[1]),27:N0} | {Rate(medians[2]),22:N0} | {medians[0] / medians[1],5:F2}×");
    }

    private static byte[] Export(MLContext ml, ITransformer model, IDataView data)
    {
        using var stream = new MemoryStream();
        ml.Model.ConvertToOnnx(model, data, stream);
        return stream.ToArray();
    }
}
