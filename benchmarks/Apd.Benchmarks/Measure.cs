using System.Diagnostics;

namespace Microsoft.ML.Apd.Benchmarks;

/// <summary>Warm up, repeat, report the median: enough for step times in the millisecond range.</summary>
internal static class Measure
{
    /// <summary>Median milliseconds of <paramref name="repetitions"/> timed calls after <paramref name="warmup"/> untimed ones.</summary>
    public static double MedianMilliseconds(Action action, int warmup = 10, int repetitions = 50)
    {
        for (int i = 0; i < warmup; i++) action();
        var times = new double[repetitions];
        for (int i = 0; i < repetitions; i++)
        {
            long start = Stopwatch.GetTimestamp();
            action();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        return Percentile(times, 0.5);
    }

    /// <summary>
    /// Median milliseconds of each action, timed in alternation (a, b, c, a, b, c, …) after <paramref name="warmup"/>
    /// untimed rounds: on a shared machine the speed drifts by tens of percent within seconds, and alternating puts
    /// every action under the same drift, so their ratio holds even when the absolute times do not.
    /// </summary>
    public static double[] InterleavedMedianMilliseconds(Action[] actions, int warmup = 5, int rounds = 40)
    {
        for (int i = 0; i < warmup; i++)
            foreach (var action in actions) action();
        var times = actions.Select(_ => new double[rounds]).ToArray();
        for (int r = 0; r < rounds; r++)
            for (int a = 0; a < actions.Length; a++)
            {
                long start = Stopwatch.GetTimestamp();
                actions[a]();
                times[a][r] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        return times.Select(t => Percentile(t, 0.5)).ToArray();
    }

    public static double Percentile(double[] values, double fraction)
    {
        var sorted = values.Order().ToArray();
        return sorted[(int)Math.Clamp(Math.Round(fraction * (sorted.Length - 1)), 0, sorted.Length - 1)];
    }
}
