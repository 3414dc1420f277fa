using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Apd;

/// <summary>The rows of one task, read from an <see cref="IDataView"/>: dense features and canonical labels.</summary>
internal sealed record TaskRows(string Task, List<float[]> Features, List<object> Labels);

/// <summary>
/// Reads an <see cref="IDataView"/> whose columns <see cref="SchemaChecks"/> accepted into per-task rows, tasks in order
/// of first appearance.
/// </summary>
internal static class TrainingDataReader
{
    /// <summary>
    /// Reads all rows. <paramref name="taskId"/> non-null: every row belongs to that task. Otherwise the task id
    /// column's values (tasks in order of first appearance), or <paramref name="defaultTask"/> without that column.
    /// Rows with a missing or non-finite label (NaN, ±Infinity, key 0) or a non-finite feature (NaN, ±Infinity) are
    /// skipped, as in ML.NET trainers, and counted in one warning per column. A row with an empty task id throws.
    /// </summary>
    public static IReadOnlyList<TaskRows> Read(IDataView data, DataViewSchema.Column features, DataViewSchema.Column label,
        LabelColumnType labelType, DataViewSchema.Column? taskColumn, string? taskId, string defaultTask,
        IHostEnvironment env, IChannel channel, CancellationToken cancellation)
    {
        var byTask = new Dictionary<string, TaskRows>();
        var order = new List<TaskRows>();
        var active = new List<DataViewSchema.Column> { features, label };
        if (taskId is null && taskColumn is { } t) active.Add(t);
        else taskColumn = null;

        using var cursor = data.GetRowCursor(active);
        var featureGetter = cursor.GetGetter<VBuffer<float>>(features);
        var labelReader = labelType.CreateReader(cursor, label);
        var taskGetter = taskColumn is { } tc ? cursor.GetGetter<ReadOnlyMemory<char>>(tc) : null;
        int size = ((VectorDataViewType)features.Type).Size;
        VBuffer<float> buffer = default;
        ReadOnlyMemory<char> taskText = default;
        long skippedLabel = 0, skippedFeatures = 0;
        string fixedTask = taskId ?? defaultTask;
        string? lastTask = null;
        TaskRows? lastRows = null;

        while (cursor.MoveNext())
        {
            if ((cursor.Position & 1023) == 0)
            {
                cancellation.ThrowIfCancellationRequested();
                if (Persistence.MLNetInternal.IsCanceled(env))
                    throw new OperationCanceledException("Operation was canceled.");
            }
            object? value = labelReader();
            if (!IsUsableLabel(value)) { skippedLabel++; continue; }
            featureGetter(ref buffer);
            var dense = new float[size];
            buffer.CopyTo(dense);
            if (!AllFinite(dense)) { skippedFeatures++; continue; }

            string task = fixedTask;
            if (taskGetter is not null)
            {
                taskGetter(ref taskText);
                if (taskText.IsEmpty || taskText.Span.IsWhiteSpace())
                    throw new InvalidOperationException(
                        $"Row {cursor.Position} has an empty task id in column '{taskColumn!.Value.Name}'; every row needs its task's name.");
                task = lastTask is not null && taskText.Span.SequenceEqual(lastTask) ? lastTask : taskText.ToString();
            }
            if (!ReferenceEquals(task, lastTask))
            {
                if (!byTask.TryGetValue(task, out lastRows))
                {
                    lastRows = new TaskRows(task, new List<float[]>(), new List<object>());
                    byTask.Add(task, lastRows);
                    order.Add(lastRows);
                }
                lastTask = task;
            }
            lastRows!.Features.Add(dense);
            lastRows.Labels.Add(value);
        }

        if (skippedLabel > 0)
            channel.Warning($"Skipped {skippedLabel} rows with a missing or non-finite value in label column '{label.Name}'.");
        if (skippedFeatures > 0)
            channel.Warning($"Skipped {skippedFeatures} rows with NaN or infinite values in feature column '{features.Name}'.");
        if (order.Count == 0)
            throw new ArgumentException(
                $"The training data has no usable rows (feature column '{features.Name}', label column '{label.Name}'): " +
                $"{skippedLabel} rows had a missing or non-finite label and {skippedFeatures} rows NaN or infinite features.", nameof(data));
        return order;
    }

    /// <summary>False for a missing label (null) and for NaN or ±Infinity in a Single or Double label.</summary>
    private static bool IsUsableLabel([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] object? value) => value switch
    {
        null => false,
        float f => float.IsFinite(f),
        double d => double.IsFinite(d),
        _ => true,
    };

    private static bool AllFinite(float[] values)
    {
        foreach (float v in values)
            if (!float.IsFinite(v)) return false;
        return true;
    }
}
