"""DVC remotes: set one up safely, pull what it holds (verified, named when corrupt), push, reproduce the rest."""
