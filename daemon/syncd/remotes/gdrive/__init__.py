"""Google Drive: the only package that imports pydrive2, googleapiclient, oauth2client, httplib2."""
