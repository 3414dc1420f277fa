namespace Microsoft.ML.Apd;

/// <summary>How the retroactive term Σ_{i&lt;t} λ₂‖σ ⊙ M_i + τ_i − θ_i*‖² is computed during task t.</summary>
public enum RetroactiveUpdateMode
{
    /// <summary>Dense reference: every earlier τ_i is a dense tensor trained by Adam at every step (the authors'
    /// algorithm); a step costs O(T·P) for T earlier tasks and P weights.</summary>
    Exact,
    /// <summary>Decomposed: σ's gradient in O(P) per step whatever the number of tasks; every earlier τ_i moves to its
    /// closed-form minimiser on its sparse support after each epoch.</summary>
    Fast,
}
