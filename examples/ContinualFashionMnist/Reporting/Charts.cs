using System.Globalization;
using ScottPlot;

namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>The README pictures of a run, drawn from the first task order's runs.</summary>
public static class Charts
{
    private const int PanelSize = 420;
    private static readonly MarkerShape[] MarkerShapes = [MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond];
    private static readonly LinePattern[] LinePatterns = [LinePattern.Solid, LinePattern.Dashed, LinePattern.Dotted, LinePattern.DenselyDashed];

    public static void SaveAll(IReadOnlyList<MethodRun> runs, string directory)
    {
        SaveAccuracyMatrices(runs, Path.Combine(directory, "accuracy-matrix.png"));
        var capacity = new Plot();
        DrawCurves(capacity, runs, r => r.Capacity, "Capacity vs tasks learned", "capacity (× one base network)", Alignment.UpperLeft, fitToData: false);
        capacity.SavePng(Path.Combine(directory, "capacity.png"), 640, 420);
        SaveAverageAccuracy(runs, Path.Combine(directory, "average-accuracy.png"));
    }

    /// <summary>
    /// Average accuracy of every method on an axis fitted to all of them and, when a method falls far below the others
    /// (fine-tuning forgets), a second panel zoomed on the methods within <see cref="ZoomPoints"/> of the best value,
    /// where the methods that remember differ by a point or two.
    /// </summary>
    private static void SaveAverageAccuracy(IReadOnlyList<MethodRun> runs, string path)
    {
        static IReadOnlyList<double> Average(MethodRun r) => r.Accuracy.Select((_, i) => 100 * ContinualMetrics.AverageAccuracy(r.Accuracy, i)).ToArray();
        double best = runs.Max(r => Average(r).Max());
        var top = runs.Where(r => Average(r).Min() >= best - ZoomPoints).ToArray();
        const string Title = "Average accuracy over the tasks learned so far", Label = "average accuracy (%)";
        if (top.Length == runs.Count || top.Length == 0)
        {
            var plot = new Plot();
            DrawCurves(plot, runs, Average, Title, Label, Alignment.LowerLeft, fitToData: true, yCeiling: 100);
            plot.SavePng(path, 640, 420);
            return;
        }
        var multiplot = new Multiplot();
        multiplot.AddPlots(2);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        DrawCurves(multiplot.GetPlot(0), runs, Average, Title, Label, Alignment.LowerLeft, fitToData: true, yCeiling: 100);
        DrawCurves(multiplot.GetPlot(1), runs, Average, $"Zoom: {string.Join(", ", top.Select(r => r.Method))}", Label,
            Alignment.LowerLeft, fitToData: true, yCeiling: 100, only: top);
        multiplot.SavePng(path, 1280, 420);
    }

    private const double ZoomPoints = 6;

    /// <summary>One heat map per method: row i = after training task i, column j = accuracy on task j.</summary>
    public static void SaveAccuracyMatrices(IReadOnlyList<MethodRun> runs, string path)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(runs.Count);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        for (int m = 0; m < runs.Count; m++) DrawMatrix(multiplot.GetPlot(m), runs[m]);
        multiplot.SavePng(path, PanelSize * runs.Count, PanelSize + 20);
    }

    private static void DrawMatrix(Plot plot, MethodRun run)
    {
        int tasks = run.Tasks.Count;
        var cells = new double[tasks, tasks];
        for (int i = 0; i < tasks; i++)
            for (int j = 0; j < tasks; j++)
                cells[i, j] = j <= i ? 100 * run.Accuracy[i][j] : double.NaN;

        var heatmap = plot.Add.Heatmap(cells);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.ManualRange = new ScottPlot.Range(0, 100);
        heatmap.NaNCellColor = Colors.White;
        // Numbers only while they fit in their cells.
        if (tasks <= 12)
            for (int i = 0; i < tasks; i++)
                for (int j = 0; j <= i; j++)
                {
                    var label = plot.Add.Text(cells[i, j].ToString("F0", CultureInfo.InvariantCulture), j, tasks - 1 - i);
                    label.LabelAlignment = Alignment.MiddleCenter;
                    label.LabelFontSize = tasks <= 6 ? 16 : 11;
                    label.LabelFontColor = cells[i, j] > 60 ? Colors.Black : Colors.White;
                }

        plot.Title($"{run.Method}: {100 * run.FinalAverageAccuracy:F1}% at the end");
        plot.XLabel("accuracy on task j");
        plot.YLabel("after training task i");
        var ticks = Enumerable.Range(0, tasks).Where(t => tasks <= 12 || t % (tasks / 10) == 0).ToArray();
        plot.Axes.Bottom.SetTicks(ticks.Select(t => (double)t).ToArray(), ticks.Select(t => (t + 1).ToString(CultureInfo.InvariantCulture)).ToArray());
        plot.Axes.Left.SetTicks(ticks.Select(t => (double)(tasks - 1 - t)).ToArray(), ticks.Select(t => (t + 1).ToString(CultureInfo.InvariantCulture)).ToArray());
        plot.Axes.SetLimits(-0.5, tasks - 0.5, -0.5, tasks - 0.5);
    }

    /// <summary>
    /// One line per method. No line hides another: each method has its own marker shape and line pattern, lines drawn
    /// first are wider, and each method's points sit slightly apart on the x axis (methods with equal values, e.g.
    /// fine-tune and EWC at capacity 1, stay visible side by side). <paramref name="fitToData"/> fits the y axis to the
    /// values (stated in the axis label) instead of starting it at 0.
    /// </summary>
    /// <param name="only">Draw only these runs (a zoom), keeping each method's color, marker and position.</param>
    private static void DrawCurves(Plot plot, IReadOnlyList<MethodRun> runs, Func<MethodRun, IReadOnlyList<double>> values, string title, string yLabel,
        Alignment legend, bool fitToData, double yCeiling = double.PositiveInfinity, IReadOnlyList<MethodRun>? only = null)
    {
        var palette = new ScottPlot.Palettes.Category10();
        const double Spread = 0.24; // tasks: the x distance between the first and the last method's points
        for (int m = 0; m < runs.Count; m++)
        {
            if (only is not null && !only.Contains(runs[m])) continue;
            var ys = values(runs[m]).ToArray();
            double offset = runs.Count == 1 ? 0 : Spread * (m / (double)(runs.Count - 1) - 0.5);
            var line = plot.Add.Scatter(Enumerable.Range(1, ys.Length).Select(x => x + offset).ToArray(), ys, palette.GetColor(m));
            line.LegendText = runs[m].Method;
            line.LineWidth = 2 + 1.5f * (runs.Count - 1 - m);
            line.MarkerSize = ys.Length <= 20 ? 9 : 4;
            line.MarkerShape = MarkerShapes[m % MarkerShapes.Length];
            line.LinePattern = LinePatterns[m % LinePatterns.Length];
        }
        plot.Title(title);
        plot.XLabel("tasks learned");
        var all = (only ?? runs).SelectMany(r => values(r)).ToArray();
        if (fitToData)
        {
            double pad = Math.Max(0.5, 0.08 * (all.Max() - all.Min()));
            double low = Math.Floor(all.Min() - pad), high = Math.Min(yCeiling, Math.Ceiling(all.Max() + pad));
            plot.Axes.SetLimitsY(low, high);
            plot.YLabel(string.Create(CultureInfo.InvariantCulture, $"{yLabel}, axis {low:0.#}–{high:0.#}"));
        }
        else
        {
            plot.Axes.SetLimitsY(0, all.Max() * 1.12);
            plot.YLabel(yLabel);
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plot.ShowLegend(legend);
    }
}
