"""What leaves the system: ``export`` (an identity's evidence package), ``media`` (its clips and crops),
``case_report`` (the HTML report), ``redaction`` (bystanders blurred), ``retention`` (old footage purged)."""
