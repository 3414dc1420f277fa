using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>Helpers that make tensor ownership explicit: results owned by the caller, no temporaries left behind.
/// Scalars too: an implicitly converted TorchSharp <c>Scalar</c> (<c>x * 2.0</c>) has a finaliser and nothing keeps it
/// alive during the native call, so on a long operation the finaliser thread can free it while libtorch reads it
/// ("Unknown scalar type"; met in the 1,000-task benchmark, and once in a training step while other tests ran). Operations
/// over every task's entries and those of every training step (the optimizer, the gradients added in place, the
/// composition of θ) therefore hold their scalars in <c>using var s = value.ToScalar()</c>; a tensor <c>+</c> converts its
/// α = 1 the same way, so those paths use <c>add(x, one)</c>. (The differentiable reference expressions — the objective's
/// <c>Loss</c>, the Exact update's <c>Penalty</c> — still read like the math, with implicit scalars.)</summary>
internal static class TensorOwnership
{
    /// <summary>A detached deep copy that belongs to no dispose scope (the caller owns it).</summary>
    public static Tensor Copy(Tensor source)
    {
        using var scope = NewDisposeScope();
        return source.detach().clone().DetachFromDisposeScope();
    }

    /// <summary>A second handle on the same storage (no data copied), owned by the caller and belonging to no dispose
    /// scope. Stored tensors are never written in place, so two networks can each hold a handle on one immutable tensor
    /// and dispose theirs independently: libtorch frees the storage with the last handle. No scope of its own: the one
    /// new tensor leaves the caller's scope, if any, and a scope per call costs several times the handle (a network's
    /// copy makes one handle per stored tensor, thousands with a thousand tasks).</summary>
    public static Tensor Share(Tensor source) => source.alias().DetachFromDisposeScope();

    /// <summary>Runs <paramref name="make"/> in its own scope and keeps only its result (owned by the caller).</summary>
    public static Tensor Keep(Func<Tensor> make)
    {
        using var scope = NewDisposeScope();
        return make().DetachFromDisposeScope();
    }
}
