namespace Microsoft.ML.Apd;

/// <summary>How the learning rate γ changes over the steps a task trains (see <see cref="ApdTrainer.Options.LearningRateSchedule"/>).</summary>
public enum LearningRateSchedule
{
    /// <summary>γ · <see cref="ApdTrainer.Options.LearningRateDecay"/>^epoch: constant within an epoch, multiplied by
    /// the decay after each (the authors', with decay 0.95).</summary>
    ExponentialPerEpoch,
    /// <summary>A half cosine over the task's steps, γ · ½(1 + cos(π s / S)) at step s of S = epochs × batches: γ at the
    /// first step, γ/2 halfway, close to 0 at the last, whatever the number of epochs
    /// (<see cref="ApdTrainer.Options.LearningRateDecay"/> is not used).</summary>
    Cosine,
}
