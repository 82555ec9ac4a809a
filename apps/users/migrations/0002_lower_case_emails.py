"""Stored addresses in lower case, as the login now matches them (apps/users/models.py).

Accounts whose addresses differ only by case cannot all keep them: which one a person meant is
for the operator to decide, so the migration changes nothing and names them instead.
"""

from django.db import migrations

# How many clashing addresses the error lists; the operator's query finds the rest.
CLASHES_SHOWN = 20


class CaseClash(Exception):
    pass


def lower_case_emails(apps, schema_editor):
    User = apps.get_model("users", "User")
    mixed = [
        (pk, email)
        for pk, email in User.objects.values_list("pk", "email").iterator()
        if email != email.lower()
    ]
    clashes = {}
    for _, email in mixed:
        ids = sorted(User.objects.filter(email__iexact=email).values_list("pk", flat=True))
        if len(ids) > 1:
            clashes[email.lower()] = ids
    if clashes:
        listed = "; ".join(
            f"{email} (user ids {', '.join(map(str, ids))})"
            for email, ids in sorted(clashes.items())[:CLASHES_SHOWN]
        )
        raise CaseClash(
            f"{len(clashes)} address(es) belong to more than one account when case is ignored: {listed}. "
            "Logins now ignore case, so each address may have one account: merge or rename these "
            "(admin or `manage.py shell`), then run `manage.py migrate` again. Nothing was changed."
        )
    for pk, email in mixed:
        User.objects.filter(pk=pk).update(email=email.lower())


class Migration(migrations.Migration):
    dependencies = [("users", "0001_initial")]

    operations = [migrations.RunPython(lower_case_emails, migrations.RunPython.noop)]
