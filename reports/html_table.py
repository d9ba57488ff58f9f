"""Tables of the report page: a table longer than a screen gets a filter box and sortable
columns (a few lines of inline script, no network). Without scripts the box stays hidden and
the table is whole."""

from __future__ import annotations

from html import escape

SCREEN_ROWS = 25  # more rows than this: a filter box and column sort

# Filters every table that has a box, sorts a column on a click on its head (numbers as
# numbers, the rest as text), and takes a first filter from the address: page.html#q=acme.
SCRIPT = """<script>
(function(){var q=decodeURIComponent((location.hash.match(/[#&]q=([^&]*)/)||[,""])[1]);
document.querySelectorAll("input.filter").forEach(function(box){
var t=document.getElementById(box.dataset.table),b=t.tBodies[0];box.hidden=false;
function apply(){var s=box.value.toLowerCase();[].forEach.call(b.rows,function(r){
r.hidden=s!==""&&r.textContent.toLowerCase().indexOf(s)<0;});}
box.addEventListener("input",apply);box.value=q;apply();
[].forEach.call(t.tHead.rows[0].cells,function(th,i){th.classList.add("sortable");
th.addEventListener("click",function(){var d=th.dataset.d==="1"?-1:1;th.dataset.d=d;
[].slice.call(b.rows).sort(function(x,y){var a=x.cells[i].textContent,c=y.cells[i].textContent,
m=Number(a.replace(/[,%\\s]/g,"")),n=Number(c.replace(/[,%\\s]/g,""));
return d*(a===""||c===""||isNaN(m)||isNaN(n)?a.localeCompare(c):m-n);})
.forEach(function(r){b.appendChild(r);});});});});})();
</script>"""


def rows_table(head: list[str], rows: list[list[str]], table_id: str | None = None) -> str:
    """`rows` are lists of cell HTML (`<td>...</td>`, or the inner HTML of one); a table of
    more than SCREEN_ROWS rows gets a filter box (shown by the script) when it has an id."""
    heads = "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in head)
    body = "".join(
        "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>"
        for row in rows
    )
    box = ""
    if table_id and len(rows) > SCREEN_ROWS:
        box = (
            f'<input type=search class=filter data-table="{table_id}" hidden '
            'placeholder="Filter rows (any text)" aria-label="Filter rows">'
        )
    id_attr = f' id="{table_id}"' if table_id else ""
    return f"{box}<table{id_attr}><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>"
