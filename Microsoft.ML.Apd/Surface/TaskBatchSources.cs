using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd;

/// <summary>The one home of the in-memory-or-streaming decision for a task, and of loading a task into memory.</summary>
internal static class TaskBatchSources
{
    /// <summary>
    /// The task's rows as the learner's batch source: in memory or streamed, as <paramref name="loading"/> says
    /// (<see cref="TrainingDataLoading.Auto"/>: in memory when the features take at most
    /// <paramref name="inMemoryLimitMegabytes"/>). The caller disposes the result.
    /// </summary>
    public static IBatchSource Create(TrainingRows rows, TaskSurvey task, int[] classOfLabelId, int classCount,
        TrainingDataLoading loading, int inMemoryLimitMegabytes, int shufflePoolSize, Device device, IChannel channel)
    {
        double megabytes = task.RowCount * (double)rows.FeatureCount * sizeof(float) / (1 << 20);
        bool inMemory = loading == TrainingDataLoading.InMemory
            || (loading == TrainingDataLoading.Auto && megabytes <= inMemoryLimitMegabytes);
        if (inMemory) return LoadIntoMemory(rows, task, classOfLabelId, classCount, device);
        channel.Info($"APD: task '{task.Task}' ({megabytes:F0} MB of features) is streamed from the data every epoch through a shuffle pool of {shufflePoolSize} rows.");
        return new StreamedBatchSource(rows, task.Task, task.RowCount, classOfLabelId, shufflePoolSize, device);
    }

    /// <summary>One copy: features straight from the cursor into one float32 array that the tensors share, labels as class indices.</summary>
    private static TensorBatchSource LoadIntoMemory(TrainingRows rows, TaskSurvey task, int[] classOfLabelId, int classCount, Device device)
    {
        int size = rows.FeatureCount;
        long n = task.RowCount;
        if (n * size > Array.MaxLength)
            throw new InvalidOperationException(
                $"Task '{task.Task}' has {n} rows of {size} features, more than one array can hold; train it with {nameof(ApdTrainer.Options.DataLoading)} = {nameof(TrainingDataLoading.Streaming)}.");
        var features = new float[n * size];
        var labels = new long[n];
        using (var cursor = rows.Open(task.Task, classOfLabelId, shuffle: null, $"loading task '{task.Task}' into memory"))
        {
            long i = 0;
            while (i < n && cursor.MoveNext(features.AsSpan((int)(i * size), size), out _, out int label)) labels[i++] = label;
            cursor.CheckCount(i, n, atEnd: true);
            if (cursor.MoveNext(new float[size], out _, out _)) cursor.CheckCount(n + 1, n, atEnd: false);
        }
        using var flat = torch.from_array(features);
        using var x = flat.view(n, size);
        using var y = torch.from_array(labels);
        return new TensorBatchSource(x, y, size, classCount, device);
    }
}
