namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>The continual-learning scenarios of the paper's Fashion-MNIST experiments.</summary>
public enum ScenarioKind { Split, Permuted, Rotated }

/// <summary>Builds the tasks of a scenario in their canonical order.</summary>
public static class Scenario
{
    public static int DefaultTaskCount(ScenarioKind kind) => kind == ScenarioKind.Split ? SplitFashionMnist.ClassPairs.Length : 10;

    public static IReadOnlyList<ContinualTask> Create(ScenarioKind kind, int taskCount, int seed)
    {
        if (taskCount < 1) throw new ArgumentOutOfRangeException(nameof(taskCount), "A scenario needs at least one task.");
        return kind switch
        {
            ScenarioKind.Split when taskCount > SplitFashionMnist.ClassPairs.Length =>
                throw new ArgumentOutOfRangeException(nameof(taskCount), $"The split scenario has at most {SplitFashionMnist.ClassPairs.Length} tasks."),
            ScenarioKind.Split => SplitFashionMnist.ClassPairs.Take(taskCount).Select(pair => new ClassSplitTask(pair)).ToArray(),
            // Each task's permutation depends on the run seed and the task, never on the order tasks are learned in.
            ScenarioKind.Permuted => Enumerable.Range(0, taskCount).Select(t => new PermutedPixelsTask(t, StableSeed.Combine(seed, t))).ToArray(),
            // Angles spread evenly over [0°, 180°), like the rotated-MNIST benchmarks.
            ScenarioKind.Rotated => Enumerable.Range(0, taskCount).Select(t => new RotatedImagesTask(180.0 * t / taskCount)).ToArray(),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
    }
}
