"""The return path (``mirror.pull``): files others write on Drive under chosen subfolders
come down into the project folder.

``records`` keeps what was pulled and the feed's page token in the state db,
``pull_tree`` follows which Drive folders are pull folders, ``landing`` puts
files in place (temp file + rename, conflict copies, the local trash) and
``poller`` runs one project's polls in a thread.  Drive itself is read through
``remotes.gdrive.pull_source``.
"""
