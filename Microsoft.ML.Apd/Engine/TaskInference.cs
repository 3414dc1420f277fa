using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>How a row's task is told (higher score = more likely that task).</summary>
internal enum TaskInferenceRule
{
    /// <summary>The task whose model of its inputs (<see cref="TaskInputModel"/>) gives the row the highest
    /// likelihood; score log N(x; μ_t, diag v_t). Needs no network output, so only the chosen task's network runs.</summary>
    InputLikelihood,

    /// <summary>SupSup's rule (Wortsman et al., NeurIPS 2020): the task whose prediction has the lowest entropy;
    /// score −H(p_t) / log C_t (entropy normalised by its maximum, so tasks of different class counts compare).</summary>
    LowestEntropy,

    /// <summary>The task with the highest maximum softmax probability (Hendrycks &amp; Gimpel's baseline); score log max p_t.</summary>
    MaxSoftmax,

    /// <summary>The task with the lowest energy −logsumexp(logits_t) (Liu et al., NeurIPS 2020); score logsumexp(logits_t).</summary>
    Energy,
}

/// <summary>
/// Task inference for rows without a task id: score each task by a <see cref="TaskInferenceRule"/>, pick the best,
/// and score the row with the chosen task's network. The confidence of the pick is the softmax over tasks of the
/// rule's score (for <see cref="TaskInferenceRule.InputLikelihood"/> the posterior p(t | x) under equal priors; for
/// <see cref="TaskInferenceRule.Energy"/> p(t | x) when all tasks' logits are read as one softmax over (task, class) pairs).
/// </summary>
internal static class TaskInference
{
    /// <summary>The rule the library uses for <paramref name="network"/>: the input likelihood when every task has a
    /// model of its inputs — on the same networks it routes 99.98 % of permuted Fashion-MNIST test rows right where the
    /// best rule reading the networks' outputs (energy) routes 53 %, and 57.7 % of class-incremental Split rows against
    /// maximum softmax's 44.2 % (docs/benchmarks.md, "Task inference") — else energy (tasks learned before format 4
    /// have no input model).</summary>
    public static TaskInferenceRule RuleFor(ApdNetwork network, IReadOnlyList<string> tasks) =>
        tasks.All(t => network.InputModelOf(t) is not null) ? TaskInferenceRule.InputLikelihood : TaskInferenceRule.Energy;

    /// <summary>The rows' inferred tasks (indices into the tasks given to <see cref="Infer"/>), the confidences and the class
    /// probabilities of the inferred task of each row.</summary>
    public sealed record Result(int[] Tasks, float[] Confidences, float[][] Probabilities);

    /// <summary>Logits of every task of <paramref name="tasks"/> for <paramref name="features"/> [N, InputSize], [N, C_t] each.</summary>
    public static Tensor[] Logits(ApdNetwork network, IReadOnlyList<string> tasks, Tensor features) =>
        network.ForwardAll(features, tasks);

    /// <summary>The rule's score of each task for each row, [T, N]: from the tasks' input models for
    /// <see cref="TaskInferenceRule.InputLikelihood"/>, else from <paramref name="logits"/> (every task's, in order).</summary>
    public static Tensor Scores(ApdNetwork network, IReadOnlyList<string> tasks, Tensor features, IReadOnlyList<Tensor>? logits,
        TaskInferenceRule rule)
    {
        using var scope = NewDisposeScope();
        if (rule == TaskInferenceRule.InputLikelihood)
            return stack(tasks.Select(t => (network.InputModelOf(t)
                ?? throw new InvalidOperationException($"Task '{t}' has no model of its inputs.")).LogLikelihood(features)).ToList())
                .MoveToOuterDisposeScope();
        ArgumentNullException.ThrowIfNull(logits);
        return Scores(logits, rule).MoveToOuterDisposeScope();
    }

    /// <summary>A rule's score of each task for each row from every task's logits, [T, N] (not for
    /// <see cref="TaskInferenceRule.InputLikelihood"/>).</summary>
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

    /// <summary>Infers the task of each row of <paramref name="features"/> among <paramref name="tasks"/> by
    /// <paramref name="rule"/> (default: <see cref="RuleFor"/>).</summary>
    public static Result Infer(ApdNetwork network, IReadOnlyList<string> tasks, Tensor features, TaskInferenceRule? rule = null)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var chosenRule = rule ?? RuleFor(network, tasks);
        // The input likelihood needs no network output: only the chosen tasks' networks run, on their rows.
        var logits = chosenRule == TaskInferenceRule.InputLikelihood ? null : Logits(network, tasks, features);
        var scores = Scores(network, tasks, features, logits, chosenRule);
        var best = scores.argmax(0);
        var confidence = scores.softmax(0).gather(0, best.unsqueeze(0)).squeeze(0);
        int[] chosen = best.to(CPU).data<long>().Select(i => (int)i).ToArray();
        float[] confidences = confidence.to(float32).to(CPU).data<float>().ToArray();
        var probabilities = new float[chosen.Length][];
        foreach (var group in Enumerable.Range(0, chosen.Length).GroupBy(row => chosen[row]))
        {
            int t = group.Key;
            long[] rows = group.Select(row => (long)row).ToArray();
            var taskLogits = logits?[t].index_select(0, tensor(rows, device: logits[t].device))
                ?? network.Forward(features.index_select(0, tensor(rows, device: features.device)), tasks[t]);
            int classes = (int)taskLogits.shape[1];
            float[] p = taskLogits.softmax(1).to(CPU).data<float>().ToArray();
            for (int r = 0; r < rows.Length; r++)
                probabilities[rows[r]] = p.AsSpan(r * classes, classes).ToArray();
        }
        return new Result(chosen, confidences, probabilities);
    }
}
