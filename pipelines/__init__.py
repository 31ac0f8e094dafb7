"""The nightly Apache Beam batch: thin DoFns and PTransforms around the pure domain functions."""
