using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>How a row's task is told from the outputs of every task's network (higher score = more likely that task).</summary>
internal enum TaskInferenceRule
{
    /// <summary>SupSup's rule (Wortsman et al., NeurIPS 2020): the task whose prediction has the lowest entropy;
    /// score −H(p_t) / log C_t (entropy normalised by its maximum, so tasks of different class counts compare).</summary>
    LowestEntropy,

    /// <summary>The task with the highest maximum softmax probability (Hendrycks &amp; Gimpel's baseline); score log max p_t.</summary>
    MaxSoftmax,

    /// <summary>The task with the lowest energy −logsumexp(logits_t) (Liu et al., NeurIPS 2020); score logsumexp(logits_t).</summary>
    Energy,
}

/// <summary>
/// Task inference for rows without a task id: run every task's network on the rows (<see cref="ApdNetwork.ForwardAll"/>:
/// batched, the first layer's shared product once for all tasks),
/// score each task by a <see cref="TaskInferenceRule"/>, pick the best. The confidence of the pick is p(t | x) when all
/// tasks' logits are read as one softmax over (task, class) pairs.
/// </summary>
internal static class TaskInference
{
    /// <summary>The rule the library uses: the energy rule routed 77 % of permuted Fashion-MNIST rows right where SupSup's
    /// lowest entropy routed 63 % and maximum softmax 55 %, and is within a point of them on class-incremental Split
    /// (docs/benchmarks.md, "Task inference"). Its confidence is then the posterior the rule maximises.</summary>
    public const TaskInferenceRule Rule = TaskInferenceRule.Energy;

    /// <summary>The rows' inferred tasks (indices into the tasks given to <see cref="Infer"/>), the confidences and the class
    /// probabilities of the inferred task of each row.</summary>
    public sealed record Result(int[] Tasks, float[] Confidences, float[][] Probabilities);

    /// <summary>Logits of every task of <paramref name="tasks"/> for <paramref name="features"/> [N, InputSize], [N, C_t] each.</summary>
    public static Tensor[] Logits(ApdNetwork network, IReadOnlyList<string> tasks, Tensor features) =>
        network.ForwardAll(features, tasks);

    /// <summary>The rule's score of each task for each row, [T, N].</summary>
    public static Tensor Scores(IReadOnlyList<Tensor> logits, TaskInferenceRule rule)
    {
        using var scope = NewDisposeScope();
        var scores = logits.Select(l => rule switch
        {
            TaskInferenceRule.LowestEntropy => LowestEntropyScore(l),
            TaskInferenceRule.MaxSoftmax => l.log_softmax(1).max(1).values,
            TaskInferenceRule.Energy => l.logsumexp(1),
            _ => throw new ArgumentOutOfRangeException(nameof(rule)),
        }).ToList();
        return stack(scores).MoveToOuterDisposeScope();
    }

    // −H(p) / log C: 0 for a one-hot prediction, −1 for a uniform one.
    private static Tensor LowestEntropyScore(Tensor logits)
    {
        var logp = logits.log_softmax(1);
        return (logp.exp() * logp).sum(1) / Math.Log(logits.shape[1]);
    }

    /// <summary>Infers the task of each row of <paramref name="features"/> among <paramref name="tasks"/>.</summary>
    public static Result Infer(ApdNetwork network, IReadOnlyList<string> tasks, Tensor features, TaskInferenceRule rule = Rule)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = Logits(network, tasks, features);
        var best = Scores(logits, rule).argmax(0);
        // p(t | x) when all tasks' logits are read as one softmax over (task, class) pairs: softmax over tasks of
        // logsumexp(logits_t), at the inferred task.
        var confidence = Scores(logits, TaskInferenceRule.Energy).softmax(0).gather(0, best.unsqueeze(0)).squeeze(0);
        int[] chosen = best.to(CPU).data<long>().Select(i => (int)i).ToArray();
        float[] confidences = confidence.to(float32).to(CPU).data<float>().ToArray();
        var probabilities = new float[chosen.Length][];
        var perTask = logits.Select(l => l.softmax(1).to(CPU).data<float>().ToArray()).ToArray();
        for (int row = 0; row < chosen.Length; row++)
        {
            int t = chosen[row], classes = (int)logits[t].shape[1];
            probabilities[row] = perTask[t].AsSpan(row * classes, classes).ToArray();
        }
        return new Result(chosen, confidences, probabilities);
    }
}
