"""The member app's back end: sign-in codes and links, device sessions, rotating card
codes, web push (see ``docs/member-app.md``)."""
