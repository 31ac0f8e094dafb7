"""What branches run: submission of applications and agreements, and the synthetic generator."""
