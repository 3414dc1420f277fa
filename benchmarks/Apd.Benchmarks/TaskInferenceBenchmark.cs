using System.Diagnostics;
using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Apd.Samples;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Benchmarks;

using Row = PublicApi.Row;

/// <summary>
/// Prediction without a task id, through the public API: (1) permuted Fashion-MNIST, 10 tasks — share of test rows
/// routed to their own task and accuracy without task ids against with them; (2) Split Fashion-MNIST, 5 tasks,
/// class-incremental (10 classes, no task id) — the same two numbers; each for every <see cref="TaskInferenceRule"/>
/// and its per-task calibration, the library's rule also through <c>Transform</c>; (3) rows/s of <c>Transform</c> with
/// and without task ids at 5, 10 and 50 tasks.
/// </summary>
internal static class TaskInferenceBenchmark
{
    public sealed class Unlabelled
    {
        [VectorType(FashionMnist.ImageSize)]
        public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public string PredictedTask { get; set; } = "";
        public float TaskConfidence { get; set; }
    }

    /// <param name="trainImages">Training images per task (default: all; fewer on a loaded machine).</param>
    /// <param name="testImages">Test images per task (default: all).</param>
    public static void Run(FashionMnistSet train, FashionMnistSet test, int epochs, string parts, int? trainImages,
        int? testImages, TextWriter output)
    {
        var fullTrain = train;
        if (trainImages is int n) train = new FashionMnistSet(train.Images.Take(n).ToArray(), train.Labels.Take(n).ToArray());
        if (testImages is int m) test = new FashionMnistSet(test.Images.Take(m).ToArray(), test.Labels.Take(m).ToArray());
        if (parts.Contains("permuted"))
        {
            var tasks = Enumerable.Range(0, 10).Select(t => (Name: $"p{t}", Train: Permuted(train, t), Test: Permuted(test, t))).ToList();
            Accuracy("Permuted Fashion-MNIST, 10 tasks", tasks, epochs, output);
        }
        if (parts.Contains("split"))
        {
            var tasks = Enumerable.Range(0, SplitFashionMnist.TaskCount).Select(t => (Name: SplitFashionMnist.TaskName(t),
                Train: Split(train, t), Test: Split(test, t))).ToList();
            Accuracy("Split Fashion-MNIST, 5 tasks, class-incremental", tasks, epochs, output);
        }
        if (parts.Contains("speed"))
            Throughput(fullTrain, test, output);
    }

    private static List<Row> Permuted(FashionMnistSet set, int task) => PublicApi.Permuted(set, task).ToList();

    private static List<Row> Split(FashionMnistSet set, int task) =>
        SplitFashionMnist.Rows(set, SplitFashionMnist.ClassPairs[task]).Select(i => new Row
        {
            Features = set.Images[i],
            TaskId = SplitFashionMnist.TaskName(task),
            Label = FashionMnist.ClassNames[set.Labels[i]],
        }).ToList();

    private static void Accuracy(string title, List<(string Name, List<Row> Train, List<Row> Test)> tasks, int epochs, TextWriter output)
    {
        var ml = new MLContext(seed: 1);
        var trainer = ml.MulticlassClassification.Trainers.Apd(new ApdTrainer.Options { NumberOfEpochs = epochs, Seed = 1 });
        var watch = Stopwatch.StartNew();
        ApdTransformer? model = null;
        foreach (var task in tasks)
        {
            var previous = model;
            model = trainer.Fit(ml.Data.LoadFromEnumerable(task.Train), task.Name);
            previous?.Dispose();
        }
        output.WriteLine($"## {title}: {tasks[0].Train.Count:N0}+ training rows per task, {epochs} epochs, trained in {watch.Elapsed.TotalSeconds:F0} s");
        using var _ = model;
        var testRows = tasks.SelectMany(t => t.Test).ToList();
        var truthTask = testRows.Select(r => r.TaskId).ToArray();
        var truthLabel = testRows.Select(r => r.Label).ToArray();

        // With task ids: today's path.
        var withIds = ml.Data.CreateEnumerable<Prediction>(model!.Transform(ml.Data.LoadFromEnumerable(testRows)), reuseRowObject: false)
            .Select(p => p.PredictedLabel).ToArray();
        double withIdsAccuracy = Share(withIds, truthLabel);
        output.WriteLine($"with task ids: accuracy {100 * withIdsAccuracy:F2} %");

        // Without: the library's rule through Transform.
        var unlabelled = testRows.Select(r => new Unlabelled { Features = r.Features, Label = r.Label }).ToList();
        watch.Restart();
        var inferred = ml.Data.CreateEnumerable<Prediction>(model.Transform(ml.Data.LoadFromEnumerable(unlabelled)), reuseRowObject: false).ToList();
        output.WriteLine($"without task ids, Transform ({TaskInference.RuleFor(model.Network, model.Tasks)}): routed to own task {100 * Share(inferred.Select(p => p.PredictedTask).ToArray(), truthTask):F2} %, " +
            $"accuracy {100 * Share(inferred.Select(p => p.PredictedLabel).ToArray(), truthLabel):F2} % ({testRows.Count / watch.Elapsed.TotalSeconds:N0} rows/s)");
        ConfidenceReport(inferred, truthTask, output);

        // Every rule, uncalibrated and calibrated per task (z-score of the rule's score on the task's own training rows).
        var network = model.Network;
        var order = model.Tasks.ToList();
        var calibration = order.Select(name => Calibrate(network, order, order.IndexOf(name), tasks.Single(t => t.Name == name).Train)).ToArray();
        output.WriteLine("rule | calibrated | routed to own task % | accuracy without ids % | minus with ids (points)");
        foreach (var rule in Enum.GetValues<TaskInferenceRule>())
            foreach (bool calibrated in new[] { false, true })
            {
                var (routed, accuracy) = Evaluate(network, order, testRows, rule, calibrated ? calibration.Select(c => c[(int)rule]).ToArray() : null, model);
                output.WriteLine($"{rule} | {(calibrated ? "yes" : "no")} | {100 * routed:F2} | {100 * accuracy:F2} | {100 * (accuracy - withIdsAccuracy):+0.00;-0.00}");
            }
    }

    private static void ConfidenceReport(List<Prediction> inferred, string[] truthTask, TextWriter output)
    {
        foreach (double threshold in new[] { 0.5, 0.9, 0.99 })
        {
            var kept = inferred.Select((p, i) => (p, i)).Where(x => x.p.TaskConfidence >= threshold).ToList();
            if (kept.Count == 0) continue;
            double right = kept.Count(x => x.p.PredictedTask == truthTask[x.i]) / (double)kept.Count;
            output.WriteLine($"  confidence ≥ {threshold}: {100.0 * kept.Count / inferred.Count:F1} % of rows, {100 * right:F2} % of them routed right");
        }
    }

    private static IEnumerable<Tensor> Batches(List<Row> rows, int size = 1000)
    {
        for (int start = 0; start < rows.Count; start += size)
        {
            var batch = rows.Skip(start).Take(size).ToList();
            yield return tensor(batch.SelectMany(r => r.Features).ToArray(), [batch.Count, FashionMnist.ImageSize]);
        }
    }

    /// <summary>Per rule: mean and standard deviation of task <paramref name="t"/>'s score on its first 5,000 training rows.</summary>
    private static (float Mean, float Std)[] Calibrate(ApdNetwork network, IReadOnlyList<string> order, int t, List<Row> train)
    {
        var sample = train.Take(5000).ToList();
        return Enum.GetValues<TaskInferenceRule>().Select(rule =>
        {
            var values = new List<float>();
            foreach (var x in Batches(sample))
                using (var scope = NewDisposeScope())
                {
                    Tensor[]? logits = rule == TaskInferenceRule.InputLikelihood ? null : [network.Forward(x, order[t])];
                    values.AddRange(TaskInference.Scores(network, [order[t]], x, logits, rule)[0].to(float32).data<float>().ToArray());
                }
            float mean = values.Average();
            float std = MathF.Sqrt(values.Average(v => (v - mean) * (v - mean))) + 1e-6f;
            return (mean, std);
        }).ToArray();
    }

    private static (double Routed, double Accuracy) Evaluate(ApdNetwork network, IReadOnlyList<string> order, List<Row> rows,
        TaskInferenceRule rule, (float Mean, float Std)[]? calibration, ApdTransformer model)
    {
        int routed = 0, right = 0, i = 0;
        var classNames = order.ToDictionary(t => t, model.GetClassNames);
        foreach (var x in Batches(rows))
            using (var scope = NewDisposeScope())
            using (no_grad())
            {
                var logits = TaskInference.Logits(network, order, x);
                var scores = TaskInference.Scores(network, order, x, logits, rule);
                if (calibration is not null)
                    scores = (scores - tensor(calibration.Select(c => c.Mean).ToArray()).unsqueeze(1)) / tensor(calibration.Select(c => c.Std).ToArray()).unsqueeze(1);
                var best = scores.argmax(0).data<long>().ToArray();
                var classes = logits.Select(l => l.argmax(1).data<long>().ToArray()).ToArray();
                for (int r = 0; r < best.Length; r++, i++)
                {
                    string task = order[(int)best[r]];
                    if (task == rows[i].TaskId) routed++;
                    if (classNames[task][(int)classes[best[r]][r]] == rows[i].Label) right++;
                }
            }
        return (routed / (double)rows.Count, right / (double)rows.Count);
    }

    private static double Share(string[] predicted, string[] truth) =>
        predicted.Zip(truth).Count(p => p.First == p.Second) / (double)truth.Length;

    /// <summary>Rows/s of Transform with mixed task ids and without task ids, on models of 5, 10 and 50 permuted tasks
    /// (each trained on 1,000 images for 1 epoch: scoring cost does not depend on how well a task was learned).</summary>
    private static void Throughput(FashionMnistSet train, FashionMnistSet test, TextWriter output)
    {
        var ml = new MLContext(seed: 1);
        var trainer = ml.MulticlassClassification.Trainers.Apd(new ApdTrainer.Options { NumberOfEpochs = 1, Seed = 1 });
        var small = new FashionMnistSet(train.Images.Take(1000).ToArray(), train.Labels.Take(1000).ToArray());
        var probe = new FashionMnistSet(test.Images.Take(500).ToArray(), test.Labels.Take(500).ToArray());
        ApdTransformer? model = null;
        output.WriteLine("tasks | rows | with task ids rows/s | without task ids rows/s | ratio | PredictionEngine without id, ms per row");
        for (int t = 0; t < 50; t++)
        {
            var previous = model;
            model = trainer.Fit(ml.Data.LoadFromEnumerable(Permuted(small, t)), $"p{t}");
            previous?.Dispose();
            int count = t + 1;
            if (count is not (5 or 10 or 50)) continue;
            // 5,000 rows: the probe images of 10 tasks (or of every task, for 5), interleaved.
            var rows = Enumerable.Range(0, Math.Min(count, 10)).Select(k => Permuted(probe, k * count / Math.Min(count, 10))).ToList();
            var mixed = Enumerable.Range(0, probe.Count).SelectMany(i => rows.Select(r => r[i])).ToList();
            var withIds = ml.Data.LoadFromEnumerable(mixed);
            var withoutIds = ml.Data.LoadFromEnumerable(mixed.Select(r => new Unlabelled { Features = r.Features, Label = r.Label }).ToList());
            var current = model!;
            var times = Measure.InterleavedMedianMilliseconds(
            [
                () => ml.Data.CreateEnumerable<Prediction>(current.Transform(withIds), reuseRowObject: true).Count(),
                () => ml.Data.CreateEnumerable<Prediction>(current.Transform(withoutIds), reuseRowObject: true).Count(),
            ], warmup: 1, rounds: 3);
            using var engine = ml.Model.CreatePredictionEngine<Unlabelled, Prediction>(current, new PredictionEngineOptions { OwnsTransformer = false });
            var one = new Unlabelled { Features = mixed[0].Features };
            double perRow = Measure.MedianMilliseconds(() => engine.Predict(one), warmup: 5, repetitions: 50);
            output.WriteLine($"{count} | {mixed.Count:N0} | {mixed.Count / (times[0] / 1000):N0} | {mixed.Count / (times[1] / 1000):N0} | {times[0] / times[1]:F2} | {perRow:F3}");
        }
        model?.Dispose();
    }
}
