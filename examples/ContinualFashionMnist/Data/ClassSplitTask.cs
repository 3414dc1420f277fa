using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>Split scenario: a task sees only a few of the ten classes (their images unchanged).</summary>
public sealed class ClassSplitTask(IReadOnlyList<int> classes)
    : ContinualTask(SplitFashionMnist.TaskName(classes),
        classes.Select(c => FashionMnist.ClassNames[c]).ToArray())
{
    protected override (Tensor Images, Tensor Labels) Derive(TaskData source)
    {
        var local = full_like(source.Labels, -1);
        for (int i = 0; i < classes.Count; i++) local = where(source.Labels == classes[i], i, local);
        var rows = nonzero(local >= 0).flatten();
        return (source.Images.index_select(0, rows), local.index_select(0, rows));
    }
}
