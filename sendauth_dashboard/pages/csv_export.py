"""CSV downloads: streamed a row at a time, safe to open in a spreadsheet."""
import csv
import io

from flask import Response, stream_with_context

# A cell starting with one of these is a formula to a spreadsheet; a quote makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value):
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def lines(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([cell(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def csv_response(filename, rows):
    """A download named ``filename`` whose body is ``rows`` (an iterable of tuples)."""
    return Response(stream_with_context(lines(rows)), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    })
