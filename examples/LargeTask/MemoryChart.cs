using System.Globalization;
using ScottPlot;

namespace Microsoft.ML.Apd.Samples.LargeTask;

/// <summary>Peak working set of Fit against the task's rows, from the lines <c>fit --csv</c> appends.</summary>
public static class MemoryChart
{
    public static void Write(string csvPath, string pngPath)
    {
        var rows = File.ReadLines(csvPath).Skip(1).Select(line => line.Split(','))
            .Select(f => (Rows: double.Parse(f[0], CultureInfo.InvariantCulture), Loading: f[1], PeakMb: double.Parse(f[5], CultureInfo.InvariantCulture)))
            .OrderBy(r => r.Rows).ToArray();
        var plot = new Plot();
        foreach (var group in rows.GroupBy(r => r.Loading))
        {
            var series = plot.Add.Scatter(group.Select(r => r.Rows / 1e6).ToArray(), group.Select(r => r.PeakMb).ToArray());
            series.LegendText = $"Fit, {group.Key}";
            series.MarkerSize = 8;
        }
        var features = plot.Add.Scatter(rows.Select(r => r.Rows / 1e6).ToArray(), rows.Select(r => r.Rows * 784 * 4 / 1e6).ToArray());
        features.LegendText = "the task's features as float32";
        features.LinePattern = LinePattern.Dashed;
        plot.Axes.SetLimitsY(0, Math.Max(rows.Max(r => r.Rows) * 784 * 4 / 1e6, rows.Max(r => r.PeakMb)) * 1.1);
        plot.Title("Peak working set of one Fit epoch vs rows (784 features)");
        plot.XLabel("rows (millions)");
        plot.YLabel("MB");
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(pngPath, 800, 450);
    }
}
