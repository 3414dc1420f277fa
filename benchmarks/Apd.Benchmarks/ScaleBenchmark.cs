using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Apd.Samples;
using Microsoft.ML.Data;
using ScottPlot;

namespace Microsoft.ML.Apd.Benchmarks;

using Row = PublicApi.Row;

/// <summary>
/// Issue #17: many short tasks through the public API. Trains <c>tasks</c> permuted Fashion-MNIST tasks (the same
/// <c>images</c> training images per task, each permuted by its own seed), disposing each previous model after the next
/// <c>Fit</c> as a user would, and records per task the Fit seconds, the training step time, the process working set
/// and the peak during the Fit; every <c>every</c> tasks also the saved model bytes and the capacity. Then, on the last
/// model: save/load seconds (MB/s), <c>Forget</c> of one task, scoring rows of every task with mixed task ids (rows/s
/// and working-set growth, at cache budgets from 0 to twice the default), <c>PredictionEngine</c> p50 for rows of
/// recently used tasks at 10 tasks (a model kept from task 10) and at the last task, and last one more task whose
/// <c>Fit</c> runs the consolidation round the default schedule would run at that T (its K, over the tasks that follow
/// σ), whatever <c>consolidationInterval</c> the run used.
/// </summary>
internal static class ScaleBenchmark
{
    public static void Run(FashionMnistSet train, FashionMnistSet test, int tasks, int images, int epochs,
        int? consolidationInterval, int every, string outDirectory, TextWriter output, double? minutes = null, int? window = null)
    {
        var ml = new MLContext(seed: 1);
        var options = new ApdTrainer.Options { NumberOfEpochs = epochs, Seed = 1 };
        if (consolidationInterval is int s) options.ConsolidationInterval = s;
        if (window is int w) options.RetroactiveWindow = w;
        var steps = new StepClock();
        options.Progress = steps;
        var trainer = ml.MulticlassClassification.Trainers.Apd(options);
        var taskData = new FashionMnistSet(train.Images.Take(images).ToArray(), train.Labels.Take(images).ToArray());
        output.WriteLine($"## {tasks} permuted Fashion-MNIST tasks of {images} images, {epochs} epoch(s), consolidation every {options.ConsolidationInterval} tasks, retroactive window {options.RetroactiveWindow}; load at start: {Load()}");

        string csvPath = Path.Combine(outDirectory, "scale.csv");
        using (var csv = new StreamWriter(csvPath))
        {
            csv.WriteLine("task,fit_seconds,step_ms,working_set_mb,fit_peak_mb,model_bytes,capacity,fit_minor_faults,gen2_collections");
            ApdTransformer? model = null, tenTaskModel = null;
            var total = Stopwatch.StartNew();
            // A time budget (--minutes) ends training early; the measurements after it then run on the model reached.
            for (int t = 0; t < tasks && !(total.Elapsed.TotalMinutes >= minutes); t++)
            {
                var data = ml.Data.LoadFromEnumerable(PublicApi.Permuted(taskData, t).ToList());
                var previous = model;
                using var peak = new PeakMemory();
                long faultsBefore = MinorFaults();
                var watch = Stopwatch.StartNew();
                model = trainer.Fit(data, $"p{t}");
                double fitSeconds = watch.Elapsed.TotalSeconds;
                long faults = MinorFaults() - faultsBefore;
                long fitPeak = peak.Stop();
                if (t != 10) previous?.Dispose(); // task 10's model (t = 9) is kept for the PredictionEngine comparison
                if (t == 9) tenTaskModel = model;
                bool record = (t + 1) % every == 0 || t == 0 || t == tasks - 1 || total.Elapsed.TotalMinutes >= minutes;
                long bytes = record ? SavedBytes(ml, model, data.Schema) : -1;
                double capacity = record ? model.GetStatistics().Capacity : double.NaN;
                csv.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{t + 1},{fitSeconds:F4},{steps.StepMilliseconds:F3},{Environment.WorkingSet / 1e6:F1},{fitPeak / 1e6:F1},{(record ? bytes : "")},{(record ? capacity.ToString("F4", CultureInfo.InvariantCulture) : "")},{faults},{GC.CollectionCount(2)}"));
                csv.Flush();
                Console.Error.WriteLine(Bar(t + 1, tasks, total.Elapsed, fitSeconds));
            }
            Console.Error.WriteLine();
            Charts.Write(csvPath, outDirectory);
            output.WriteLine($"trained in {total.Elapsed.TotalMinutes:F1} min; load now: {Load()}");
            PerTaskSummary(csvPath, options.ConsolidationInterval, output);
            Persistence(ml, model!, output);
            Scoring(ml, model!, test, output);
            PredictionLatency(ml, tenTaskModel!, model!, test, output);
            DefaultConsolidationRound(ml, options, model!, taskData, output);
            model!.Dispose();
            if (tenTaskModel != model) tenTaskModel?.Dispose();
        }
    }

    /// <summary>Minor page faults of the process so far (first touches of fresh memory: on this VM they, not arithmetic,
    /// made the per-Fit temporaries slow; see docs/benchmarks.md), or 0 where /proc is missing.</summary>
    private static long MinorFaults() => File.Exists("/proc/self/stat")
        ? long.Parse(File.ReadAllText("/proc/self/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[7], CultureInfo.InvariantCulture)
        : 0;

    private static string Load() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";

    private static string Bar(int done, int of, TimeSpan elapsed, double lastFit)
    {
        int width = 40, filled = done * width / of;
        var eta = TimeSpan.FromSeconds(elapsed.TotalSeconds / done * (of - done));
        return $"[{new string('#', filled)}{new string('.', width - filled)}] {done}/{of} last Fit {lastFit:F2} s, elapsed {elapsed:hh\\:mm\\:ss}, ETA {eta:hh\\:mm\\:ss}";
    }

    private static long SavedBytes(MLContext ml, ITransformer model, DataViewSchema schema)
    {
        using var stream = new MemoryStream();
        ml.Model.Save(model, schema, stream);
        return stream.Length;
    }

    /// <summary>Medians of Fit seconds and step time over the first and last ten tasks (all tasks but those that
    /// consolidated, whose Fit includes the consolidation), and the consolidating Fits' seconds and peaks.</summary>
    private static void PerTaskSummary(string csvPath, int consolidationInterval, TextWriter output)
    {
        var rows = Charts.Read(csvPath);
        double Median(IEnumerable<double> values) => Measure.Percentile(values.ToArray(), 0.5);
        // The consolidating tasks are those the schedule names (their Fit includes the round), not the slow ones: late
        // plain Fits can take longer than early rounds.
        bool Consolidating(Charts.Entry r) => r.Task % consolidationInterval == 0;
        var plain = rows.Where(r => !Consolidating(r)).ToList();
        var first = plain.Where(r => r.Task >= 6 && r.Task <= 15).ToList();
        var last = plain.TakeLast(10).ToList();
        output.WriteLine($"Fit s (median of plain tasks 6–15): {Median(first.Select(r => r.FitSeconds)):F3}; last 10: {Median(last.Select(r => r.FitSeconds)):F3} " +
            $"({Median(last.Select(r => r.FitSeconds)) / Median(first.Select(r => r.FitSeconds)):F2}×)");
        // Medians of a few tasks move by 2× between runs of the same models (docs/benchmarks.md); a hundred tasks' median
        // and 90th percentile are steadier.
        var hundreds = plain.GroupBy(r => (r.Task - 1) / 100).Select(g =>
            $"{g.Key * 100 + 1}–{g.Key * 100 + 100}: {Median(g.Select(r => r.FitSeconds)):F3}/{Measure.Percentile(g.Select(r => r.FitSeconds).ToArray(), 0.9):F3}");
        output.WriteLine($"plain Fit s per hundred tasks (median/90th percentile): {string.Join(", ", hundreds)}");
        output.WriteLine($"step ms: {Median(first.Select(r => r.StepMilliseconds)):F2} → {Median(last.Select(r => r.StepMilliseconds)):F2}");
        output.WriteLine($"working set MB after task 10: {rows[Math.Min(9, rows.Count - 1)].WorkingSetMegabytes:F0}; after the last: {rows[^1].WorkingSetMegabytes:F0}; largest Fit peak {rows.Max(r => r.FitPeakMegabytes):F0}");
        var rounds = rows.Where(Consolidating).ToList();
        foreach (var r in rounds.Take(3).Concat(rounds.TakeLast(3)).Distinct())
            output.WriteLine($"  consolidating Fit at task {r.Task}: {r.FitSeconds:F2} s, peak {r.FitPeakMegabytes:F0} MB");
    }

    private static void Persistence(MLContext ml, ApdTransformer model, TextWriter output)
    {
        string path = Path.Combine(Path.GetTempPath(), $"apd-scale-{Environment.ProcessId}.zip");
        var schema = ml.Data.LoadFromEnumerable(new List<Row>()).Schema;
        var save = Stopwatch.StartNew();
        ml.Model.Save(model, schema, path);
        double saveSeconds = save.Elapsed.TotalSeconds;
        double megabytes = new FileInfo(path).Length / 1e6;
        var load = Stopwatch.StartNew();
        var loaded = (ApdTransformer)new MLContext().Model.Load(path, out _);
        double loadSeconds = load.Elapsed.TotalSeconds;
        loaded.Dispose();
        File.Delete(path);
        string task = model.Tasks[model.Tasks.Count / 2];
        var forget = Stopwatch.StartNew();
        using (model.Forget(task)) { }
        double forgetSeconds = forget.Elapsed.TotalSeconds;
        output.WriteLine($"save {saveSeconds:F2} s ({megabytes / saveSeconds:F0} MB/s), load {loadSeconds:F2} s ({megabytes / loadSeconds:F0} MB/s) of a {megabytes:F1} MB .zip; Forget('{task}') {forgetSeconds:F3} s");
    }

    /// <summary>Two test rows of every task, interleaved so every block holds many tasks. First one pass with no cache
    /// (the first scoring in the process also pays for the pipeline and libtorch's own start-up memory, which is not the
    /// cache's); then three timed passes per budget, smallest first, each with the working-set growth it causes and
    /// the cache's bytes after it: the growth should follow the budget, not the number of tasks.</summary>
    private static void Scoring(MLContext ml, ApdTransformer model, FashionMnistSet test, TextWriter output)
    {
        var perTask = model.Tasks.Select((_, t) => PublicApi.Permuted(test, t, limit: 2).ToList()).ToList();
        var mixed = Enumerable.Range(0, 2).SelectMany(i => perTask.Select(rows => rows[i])).ToList();
        var data = ml.Data.LoadFromEnumerable(mixed);
        int Score() => ml.Data.CreateEnumerable<PublicApi.Prediction>(model.Transform(data), reuseRowObject: true).Count();
        int defaultBudget = model.ScoringCacheMegabytes;
        model.ScoringCacheMegabytes = 0;
        Score();
        foreach (int budget in new[] { 0, 64, defaultBudget, 2 * defaultBudget })
        {
            model.ScoringCacheMegabytes = budget;
            GC.Collect();
            long before = Environment.WorkingSet;
            using var peak = new PeakMemory();
            var rates = new List<double>();
            for (int pass = 0; pass < 3; pass++)
            {
                var watch = Stopwatch.StartNew();
                int count = Score();
                rates.Add(count / watch.Elapsed.TotalSeconds);
            }
            long top = peak.Stop();
            output.WriteLine($"scoring {mixed.Count:N0} rows of all {model.Tasks.Count} tasks (mixed ids), cache budget {budget} MB: " +
                $"{Measure.Percentile(rates.ToArray(), 0.5):N0} rows/s (median of 3 passes); working set {before / 1e6:F0} MB before, " +
                $"peak {top / 1e6:F0} MB (+{(top - before) / 1e6:F0} MB); cache {model.Network.WeightCache.Bytes / 1e6:F0} MB in {model.Network.WeightCache.Count} entries");
        }
        model.ScoringCacheMegabytes = defaultBudget;
    }

    /// <summary>PredictionEngine p50 on rows of ten recently used tasks, the 10-task and the last model alternating.</summary>
    private static void PredictionLatency(MLContext ml, ApdTransformer ten, ApdTransformer last, FashionMnistSet test, TextWriter output)
    {
        int count = last.Tasks.Count;
        var tenRows = Enumerable.Range(0, 10).SelectMany(t => PublicApi.Permuted(test, t, limit: 20)).ToList();
        var lastRows = Enumerable.Range(count - 10, 10).SelectMany(t => PublicApi.Permuted(test, t, limit: 20)).ToList();
        var engineOptions = new PredictionEngineOptions { OwnsTransformer = false };
        using var tenEngine = ml.Model.CreatePredictionEngine<Row, PublicApi.Prediction>(ten, engineOptions);
        using var lastEngine = ml.Model.CreatePredictionEngine<Row, PublicApi.Prediction>(last, engineOptions);
        int i = 0, j = 0;
        var medians = Measure.InterleavedMedianMilliseconds(
            [() => tenEngine.Predict(tenRows[i++ % tenRows.Count]), () => lastEngine.Predict(lastRows[j++ % lastRows.Count])],
            warmup: 400, rounds: 4000);
        output.WriteLine($"PredictionEngine p50, rows of 10 recently used tasks: {medians[0] * 1000:F0} µs at 10 tasks, {medians[1] * 1000:F0} µs at {count} tasks ({medians[1] / medians[0]:F2}×)");
    }

    /// <summary>
    /// One more task on the last model (T tasks) with a trainer whose schedule makes its <c>Fit</c> consolidate, with
    /// the K the default schedule (every <see cref="ApdTrainer.Options.Defaults.ConsolidationInterval"/> tasks, K₀ + k per
    /// round) would use at T + 1: the cost of a default round at the largest T reached, even when the run consolidated
    /// less often. Reported with a plain <c>Fit</c> of the same task beside it (the difference is the round).
    /// </summary>
    private static void DefaultConsolidationRound(MLContext ml, ApdTrainer.Options runOptions, ApdTransformer model, FashionMnistSet taskData, TextWriter output)
    {
        int t = model.Tasks.Count;
        // A round clusters the tasks that follow σ: with a retroactive window, those of the current window only (this
        // benchmark forgets nothing, so the window holds the tasks since the last multiple of W), the round counted in it.
        int window = runOptions.RetroactiveWindow;
        int clustered = window > 0 ? t % window + 1 : t + 1;
        int rounds = clustered / ApdTrainer.Options.Defaults.ConsolidationInterval;
        int clusters = ApdTrainer.Options.Defaults.InitialClusterCount + ApdTrainer.Options.Defaults.ClusterCountIncrement * Math.Max(rounds - 1, 0);
        var data = ml.Data.LoadFromEnumerable(PublicApi.Permuted(taskData, t).ToList());
        var plainOptions = new ApdTrainer.Options { NumberOfEpochs = runOptions.NumberOfEpochs, Seed = runOptions.Seed, ConsolidationInterval = int.MaxValue, RetroactiveWindow = window };
        var roundOptions = new ApdTrainer.Options
        {
            NumberOfEpochs = runOptions.NumberOfEpochs, Seed = runOptions.Seed, ConsolidationInterval = t + 1, RetroactiveWindow = window,
            InitialClusterCount = clusters, ClusterCountIncrement = 0,
        };
        var plainWatch = Stopwatch.StartNew();
        using (ml.MulticlassClassification.Trainers.Apd(plainOptions).Fit(data, $"p{t}", model)) { }
        double plainSeconds = plainWatch.Elapsed.TotalSeconds;
        GC.Collect();
        long before = Environment.WorkingSet;
        using var peak = new PeakMemory();
        var watch = Stopwatch.StartNew();
        using (ml.MulticlassClassification.Trainers.Apd(roundOptions).Fit(data, $"p{t}", model)) { }
        double seconds = watch.Elapsed.TotalSeconds;
        long top = peak.Stop();
        output.WriteLine($"default-schedule consolidation round at T = {t + 1} (K = {clusters}, {clustered} following tasks clustered): Fit {seconds:F2} s against {plainSeconds:F2} s without it " +
            $"(round ≈ {seconds - plainSeconds:F2} s); working set {before / 1e6:F0} MB before, peak {top / 1e6:F0} MB (+{(top - before) / 1e6:F0} MB); load {Load()}");
    }

    /// <summary>Samples the working set every 5 ms on a background thread; <see cref="Stop"/> returns the largest seen.</summary>
    private sealed class PeakMemory : IDisposable
    {
        private readonly Thread _thread;
        private volatile bool _stop;
        private long _peak = Environment.WorkingSet;

        public PeakMemory()
        {
            _thread = new Thread(() =>
            {
                while (!_stop)
                {
                    Interlocked.Exchange(ref _peak, Math.Max(Interlocked.Read(ref _peak), Environment.WorkingSet));
                    Thread.Sleep(5);
                }
            }) { IsBackground = true };
            _thread.Start();
        }

        public long Stop()
        {
            _stop = true;
            _thread.Join();
            return Math.Max(Interlocked.Read(ref _peak), Environment.WorkingSet);
        }

        public void Dispose() => Stop();
    }

    /// <summary>Mean step time of the last task from the trainer's per-batch progress (first batch excluded: it
    /// includes the session's setup).</summary>
    private sealed class StepClock : IProgress<ApdTrainingProgress>
    {
        private TimeSpan _first;
        private int _firstBatch;
        public double StepMilliseconds { get; private set; }

        public void Report(ApdTrainingProgress p)
        {
            int index = (p.Epoch - 1) * p.NumberOfBatches + p.Batch;
            if (index == 1) { _first = p.Elapsed; _firstBatch = 1; StepMilliseconds = double.NaN; return; }
            StepMilliseconds = (p.Elapsed - _first).TotalMilliseconds / (index - _firstBatch);
        }
    }

    /// <summary>scale-*.png against the number of tasks, from scale.csv.</summary>
    internal static class Charts
    {
        public sealed record Entry(int Task, double FitSeconds, double StepMilliseconds, double WorkingSetMegabytes,
            double FitPeakMegabytes, double? ModelBytes, double? Capacity);

        public static List<Entry> Read(string csvPath) => File.ReadLines(csvPath).Skip(1).Select(line => line.Split(','))
            .Select(f => new Entry(int.Parse(f[0], CultureInfo.InvariantCulture), D(f[1]), D(f[2]), D(f[3]), D(f[4]),
                f[5].Length > 0 ? D(f[5]) : null, f[6].Length > 0 ? D(f[6]) : null)).ToList();

        private static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);

        public static void Write(string csvPath, string outDirectory)
        {
            var rows = Read(csvPath);
            double[] tasks = rows.Select(r => (double)r.Task).ToArray();
            Save(Path.Combine(outDirectory, "scale-fit.png"), "Fit seconds of each task", "s", plot =>
            {
                plot.Add.ScatterPoints(tasks, rows.Select(r => r.FitSeconds).ToArray()).LegendText = "Fit (s)";
                plot.Axes.SetLimitsY(0, Measure.Percentile(rows.Select(r => r.FitSeconds).ToArray(), 0.98) * 1.5);
            });
            Save(Path.Combine(outDirectory, "scale-step.png"), "Training step time", "ms", plot =>
                plot.Add.ScatterPoints(tasks, rows.Select(r => r.StepMilliseconds).ToArray()).LegendText = "step (ms)");
            Save(Path.Combine(outDirectory, "scale-memory.png"), "Process memory", "MB", plot =>
            {
                plot.Add.ScatterLine(tasks, rows.Select(r => r.WorkingSetMegabytes).ToArray()).LegendText = "working set after Fit";
                plot.Add.ScatterPoints(tasks, rows.Select(r => r.FitPeakMegabytes).ToArray()).LegendText = "peak during Fit";
            });
            var recorded = rows.Where(r => r.ModelBytes is not null).ToList();
            Save(Path.Combine(outDirectory, "scale-size.png"), "Saved model and capacity", "MB", plot =>
            {
                plot.Add.ScatterLine(recorded.Select(r => (double)r.Task).ToArray(), recorded.Select(r => r.ModelBytes!.Value / 1e6).ToArray()).LegendText = ".zip (MB)";
                plot.Add.ScatterLine(recorded.Select(r => (double)r.Task).ToArray(), recorded.Select(r => r.Capacity!.Value).ToArray()).LegendText = "capacity (× one network)";
            });
        }

        private static void Save(string path, string title, string unit, Action<Plot> add)
        {
            var plot = new Plot();
            add(plot);
            plot.Title(title);
            plot.XLabel("tasks learned (T)");
            plot.YLabel(unit);
            plot.ShowLegend(Alignment.UpperLeft);
            plot.SavePng(path, 800, 400);
        }
    }
}
