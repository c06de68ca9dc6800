from django.urls import path

from vestibule.people import join

urlpatterns = [
    path("join/<str:token>", join.join_account, name="join-account"),
]
