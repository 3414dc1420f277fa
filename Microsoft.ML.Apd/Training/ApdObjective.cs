using TorchSharp;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// The APD objective for task t (Yoon et al., ICLR 2020, Eq. 3–4), term by term:
/// CE_t + λ₁ Σ‖τ_t‖₁ + λ_m Σ‖v_t‖₁ + wd (‖τ_t‖² + ‖v_t‖²) [+ wd‖σ‖² for the first task]
/// + Σ_{i&lt;t} (λ₂ ‖σ ⊙ M_i + τ_i − θ_i*‖² + λ₁ ‖τ_i‖₁).
/// Squared norms are plain sums of squares, as in the paper and the reference port. (The authors' TensorFlow code uses
/// tf.nn.l2_loss = Σx²/2, i.e. the same objective with λ₂ and wd halved; on Split Fashion-MNIST that variant stores
/// about 2 % more adaptive non-zeros before consolidation, with the same accuracy.)
/// Every method returns a scalar tensor in the caller's dispose scope.
/// <para>
/// Training takes the gradient of the task loss by autograd and adds the gradients of the parameter-sized terms in
/// place (<see cref="AddL1Gradient"/>, <see cref="AddSquaredL2Gradient"/>): their derivatives are one elementwise
/// expression each, and building them into the autograd graph cost ~0.5 ms per step at task 1, over 40 % of the plain
/// network's whole forward and backward pass.
/// The differentiable forms (<see cref="AdaptiveSparsity"/>, <see cref="WeightDecay"/>…) stay as the reference the
/// tests compare the in-place gradients with.
/// </para>
/// </summary>
internal static class ApdObjective
{
    /// <summary>Task loss: mean cross-entropy of the current task's head.</summary>
    public static Tensor TaskLoss(Tensor logits, Tensor labels) => nn.functional.cross_entropy(logits, labels);

    /// <summary>λ₁ Σ_l ‖τ_t‖₁: drives the task-adaptive parameters sparse.</summary>
    public static Tensor AdaptiveSparsity(IEnumerable<Tensor> adaptive, double lambda1)
        => adaptive.Select(t => t.abs().sum()).Aggregate((a, b) => a + b) * lambda1;

    /// <summary>λ_m Σ_l ‖v_t‖₁ on the mask logits (0 by default).</summary>
    public static Tensor MaskSparsity(IEnumerable<Tensor> maskLogits, double lambdaMask)
        => maskLogits.Select(v => v.abs().sum()).Aggregate((a, b) => a + b) * lambdaMask;

    /// <summary>wd Σ ‖x‖² over the given tensors (τ_t, v_t; σ during the first task only).</summary>
    public static Tensor WeightDecay(IEnumerable<Tensor> tensors, double weightDecay)
        => tensors.Select(SquaredNorm).Aggregate((a, b) => a + b) * weightDecay;

    /// <summary>λ₂ ‖θ_i − θ_i*‖² summed over the stacked earlier tasks: the drift of their effective weights.</summary>
    public static Tensor Retroactive(Tensor drift, double lambda2) => SquaredNorm(drift) * lambda2;

    /// <summary>Adds scale · λ · sign(x), the gradient of λ‖x‖₁ (0 at 0, as autograd's), to each x.grad.</summary>
    public static void AddL1Gradient(IEnumerable<Parameter> parameters, double lambda, double scale)
    {
        using var alpha = (lambda * scale).ToScalar(); // held for the calls (see TensorOwnership): every step
        foreach (var p in parameters) GradientOf(p).add_(p.sign(), alpha);
    }

    /// <summary>Adds scale · 2λx, the gradient of λ‖x‖², to each x.grad.</summary>
    public static void AddSquaredL2Gradient(IEnumerable<Parameter> parameters, double lambda, double scale)
    {
        using var alpha = (2 * lambda * scale).ToScalar();
        foreach (var p in parameters) GradientOf(p).add_(p, alpha);
    }

    /// <summary>The proximal step of an L1 term after a gradient step: x ← sign(x)·max(|x| − <paramref name="shrink"/>, 0)
    /// in place, so every element the step moves within the shrink of zero becomes exactly 0.</summary>
    public static void ShrinkProximally(IEnumerable<Parameter> parameters, double shrink)
    {
        using var noGrad = no_grad();
        foreach (var p in parameters)
        {
            using var scope = NewDisposeScope();
            p.copy_(nn.functional.softshrink(p, shrink));
        }
    }

    private static Tensor GradientOf(Parameter p)
        => p.grad ?? throw new InvalidOperationException("The task loss's backward pass did not reach this parameter.");

    /// <summary>‖x‖² (sum of squares).</summary>
    public static Tensor SquaredNorm(Tensor x) => x.square().sum();
}
