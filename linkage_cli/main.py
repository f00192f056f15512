"""The `linkage` command: the one place where agency-side and service-side commands meet."""

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mash-linkage")
def main() -> None:
    """Privacy-preserving record linkage for multi-agency child safeguarding."""
