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

    /// <summary>Bytes of the reused block through which rows go from the cursor into the task's tensor.</summary>
    private const int BlockBytes = 1 << 20;

    /// <summary>
    /// One copy: features from the cursor into one native float32 tensor, through a reused block of rows, labels as class
    /// indices. Native, not a managed array shared with the tensor: the task's features are freed when training ends,
    /// not left to the GC (on the large-object heap, one task-sized array per Fit, collected only by a full collection).
    /// </summary>
    private static TensorBatchSource LoadIntoMemory(TrainingRows rows, TaskSurvey task, int[] classOfLabelId, int classCount, Device device)
    {
        int size = rows.FeatureCount;
        long n = task.RowCount;
        int blockRows = Math.Max(1, BlockBytes / (size * sizeof(float)));
        var block = new float[(long)blockRows * size];
        using var x = torch.empty(n, size);
        var labels = new long[n];
        using (var cursor = rows.Open(task.Task, classOfLabelId, shuffle: null, $"loading task '{task.Task}' into memory"))
        {
            long i = 0;
            int filled = 0;
            while (i < n && cursor.MoveNext(block.AsSpan(filled * size, size), out _, out int label))
            {
                labels[i++] = label;
                if (++filled < blockRows && i < n) continue;
                using var scope = torch.NewDisposeScope();
                x.narrow(0, i - filled, filled).copy_(torch.from_array(block).view(blockRows, size).narrow(0, 0, filled));
                filled = 0;
            }
            cursor.CheckCount(i, n, atEnd: true);
            if (cursor.MoveNext(new float[size], out _, out _)) cursor.CheckCount(n + 1, n, atEnd: false);
        }
        using var y = torch.from_array(labels);
        return new TensorBatchSource(x, y, size, classCount, device);
    }
}
