"""Looking at judges and results: labels from any source (`labels`), agreement with Cohen's kappa
(`agreement`), the Label Studio round trip (`annotate`) and the one-page HTML report (`report`)."""
